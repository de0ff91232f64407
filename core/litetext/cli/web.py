"""`litetext web`: a static site that runs a model's ONNX export in the browser with onnxruntime-web (docs/web.md).

The site is the package's `litetext/web/` folder (an HTML page and plain ES modules), the export (or a URL to
fetch it from) and onnxruntime-web's JavaScript and WebAssembly files. onnxruntime-web comes from the npm
registry: a pinned version, checked against its pinned SHA-512, kept in litetext's cache; `--onnxruntime-web DIR`
takes the files from a folder instead (no network).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
from importlib.resources import files
from pathlib import Path

from ..errors import LitetextError
from ..output import replace_file
from .common import say

#: The onnxruntime-web release the site is built and tested with, and its npm `dist.integrity`.
ONNXRUNTIME_WEB_VERSION = "1.31.1"
ONNXRUNTIME_WEB_INTEGRITY = ("sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73"
                             "k82URw==")
ONNXRUNTIME_WEB_TARBALL = ("https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-"
                           f"{ONNXRUNTIME_WEB_VERSION}.tgz")
#: What the page loads: the ES module build that runs both WebGPU (JSEP) and WebAssembly, and its runtime.
ONNXRUNTIME_WEB_FILES = ("ort.min.mjs", "ort-wasm-simd-threaded.jsep.mjs", "ort-wasm-simd-threaded.jsep.wasm")
#: Written into every site: what it holds, and how to tell a site from any other folder.
SITE_CONFIG = "site.json"
MODEL_FOLDER = "model"
ORT_FOLDER = "ort"

SPACE_README = """---
title: {quoted_title}
emoji: ✂️
colorFrom: indigo
colorTo: green
sdk: static
app_file: index.html
pinned: false
# Cross-origin isolation lets onnxruntime-web run WebAssembly on several threads.
custom_headers:
  cross-origin-embedder-policy: require-corp
  cross-origin-opener-policy: same-origin
  cross-origin-resource-policy: cross-origin
---

# {title}

Text-prompted segmentation in the browser: [litetext](https://github.com/litetext/litetext)'s ONNX export of
`{model}`, run by onnxruntime-web {ort_version} (WebGPU when the browser has it, else WebAssembly). Nothing leaves
the browser. Written by `litetext web`.
"""


def register(commands) -> None:
    """Add the command to `litetext`'s subparsers."""
    web = commands.add_parser("web", help="write a static site that runs a model in the browser with onnxruntime-web "
                                          "(docs/web.md)")
    web.add_argument("model", help="an ONNX export directory, or anything `litetext export` takes (exported into "
                                   "litetext's cache first)")
    web.add_argument("-o", "--out", required=True, help="directory to write the site into")
    web.add_argument("--model-url", help="fetch the export from this URL (a folder holding manifest.json) instead of "
                                         "copying it into the site")
    web.add_argument("--onnxruntime-web", metavar="DIR",
                     help=f"take onnxruntime-web's files ({', '.join(ONNXRUNTIME_WEB_FILES)}) from this folder "
                          f"instead of downloading version {ONNXRUNTIME_WEB_VERSION} from the npm registry")
    web.add_argument("--force", action="store_true", help="replace a site already in --out")
    web.set_defaults(run=run_web)


def run_web(args: argparse.Namespace) -> int:
    """`litetext web`: export (or find) the model, then write the site."""
    from ..models.atomic_dir import check_target, link_or_copy, move_into_place, staging_dir
    from ..onnx import is_export, read_manifest

    out = Path(args.out).expanduser()
    check_target(out, is_site, "litetext web site")
    if is_site(out) and not args.force:
        raise LitetextError(f"{out} already holds a litetext web site; pass --force to replace it")
    model_url = _check_model_url(args.model_url)
    ort_files = onnxruntime_web_files(args.onnxruntime_web, log=say)

    if is_export(args.model):
        export = Path(args.model).expanduser()
    else:
        from ..onnx.export import cached_export
        from .common import require_extra, warn_if_random

        require_extra("onnx", "onnx", "onnxscript", "onnxruntime")
        warn_if_random(args.model)
        export = cached_export(args.model, log=say)
    manifest = read_manifest(export)  # refuses a damaged or half-copied export before it is published

    staging = staging_dir(out, "web")
    try:
        site = files("litetext") / "web"
        for entry in site.iterdir():
            if entry.is_file() and not entry.name.startswith("."):
                (staging / entry.name).write_bytes(entry.read_bytes())
        (staging / ORT_FOLDER).mkdir()
        for name, path in ort_files.items():
            link_or_copy(path, staging / ORT_FOLDER / name)
        if model_url is None:
            (staging / MODEL_FOLDER).mkdir()
            for name in [*manifest.digests, "manifest.json"]:
                # A copy, not a hard link: ONNX refuses external data with several links (a later quantize_export
                # of the export would fail), and the site is deployed on its own.
                target = staging / MODEL_FOLDER / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(export / name, target)
        config = {"litetext_site": 1, "model": model_url or f"{MODEL_FOLDER}/", "model_name": manifest.model,
                  "onnxruntime_web": ONNXRUNTIME_WEB_VERSION if args.onnxruntime_web is None else "local",
                  "image_size": manifest.image_size}
        (staging / SITE_CONFIG).write_text(json.dumps(config, indent=2) + "\n")
        title = f"litetext: {Path(manifest.model).name or manifest.model}"
        (staging / "README.md").write_text(SPACE_README.format(
            title=title[:60], quoted_title=json.dumps(title[:60]), model=manifest.model,
            ort_version=ONNXRUNTIME_WEB_VERSION))
        move_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    where = f"the model from {model_url}" if model_url else "the model"
    print(f"litetext: wrote {out} ({where}, onnxruntime-web {config['onnxruntime_web']}); try it with "
          f"python -m http.server -d {out} and open http://localhost:8000", file=sys.stderr)
    return 0


def is_site(directory: Path) -> bool:
    """True when `directory` holds a site `litetext web` wrote."""
    try:
        return json.loads((directory / SITE_CONFIG).read_text()).get("litetext_site") == 1
    except (OSError, ValueError, AttributeError):
        return False


def onnxruntime_web_files(folder: str | os.PathLike | None, *, log=None) -> dict[str, Path]:
    """The onnxruntime-web files the site needs, by name: from `folder`, or extracted from the pinned npm
    tarball (downloaded once into litetext's cache and checked against its SHA-512)."""
    if folder is not None:
        folder = Path(folder).expanduser()
        found = {name: folder / name for name in ONNXRUNTIME_WEB_FILES}
        missing = [name for name, path in found.items() if not path.is_file()]
        if missing:
            raise LitetextError(f"{folder} lacks {', '.join(missing)}: point --onnxruntime-web at the dist/ folder "
                                f"of the onnxruntime-web npm package ({ONNXRUNTIME_WEB_TARBALL})")
        return found
    from ..models.checkpoints import cache_dir

    target = cache_dir() / "onnxruntime-web" / ONNXRUNTIME_WEB_VERSION
    found = {name: target / name for name in ONNXRUNTIME_WEB_FILES}
    if all(path.is_file() for path in found.values()):
        return found
    from ..models.atomic_dir import move_into_place, staging_dir

    tarball = _download_tarball(target.with_name(f"onnxruntime-web-{ONNXRUNTIME_WEB_VERSION}.tgz"), log=log)
    staging = staging_dir(target, "unpack")
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for name in ONNXRUNTIME_WEB_FILES:
            member = archive.extractfile(f"package/dist/{name}")
            if member is None:
                raise LitetextError(f"the onnxruntime-web {ONNXRUNTIME_WEB_VERSION} tarball has no dist/{name}")
            (staging / name).write_bytes(member.read())
    move_into_place(staging, target)
    return found


def _download_tarball(path: Path, *, log=None) -> bytes:
    """The pinned tarball's bytes, from the cache or the npm registry; refused unless its SHA-512 is the pinned one."""
    if path.is_file():
        data = path.read_bytes()
        if _integrity(data) == ONNXRUNTIME_WEB_INTEGRITY:
            return data
    import urllib.request

    if log:
        log(f"downloading onnxruntime-web {ONNXRUNTIME_WEB_VERSION} from {ONNXRUNTIME_WEB_TARBALL} ...")
    try:
        with urllib.request.urlopen(ONNXRUNTIME_WEB_TARBALL, timeout=120) as response:
            data = response.read()
    except OSError as error:
        raise LitetextError(f"cannot download onnxruntime-web {ONNXRUNTIME_WEB_VERSION} ({error}); offline, fetch "
                            f"{ONNXRUNTIME_WEB_TARBALL} elsewhere, unpack it and pass its package/dist folder as "
                            "--onnxruntime-web DIR") from None
    if _integrity(data) != ONNXRUNTIME_WEB_INTEGRITY:
        raise LitetextError(f"{ONNXRUNTIME_WEB_TARBALL} does not match its pinned SHA-512 (got {_integrity(data)}): "
                            "the download was cut short or altered; try again")
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, data)
    return data


def _integrity(data: bytes) -> str:
    """npm's Subresource-Integrity string of `data`."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def _check_model_url(url: str | None) -> str | None:
    if url is None:
        return None
    if not url.startswith(("https://", "http://", "/", "./", "../")):
        raise LitetextError(f"--model-url {url!r} is not a URL: give the folder holding the export's manifest.json, "
                            "e.g. https://huggingface.co/USER/REPO/resolve/main/")
    return url if url.endswith("/") else url + "/"
