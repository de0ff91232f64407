"""The browser page (`litetext web`) against the Python ONNX engine on this machine: full-size random weights.

For each case (model × input size) this script gets the ONNX export of the full-size random model (built with
litetext's random builders and exported into litetext's cache once, as `litetext bench --backend onnx` does),
writes the site with `litetext web`, serves it with cross-origin isolation headers (so onnxruntime-web runs
WebAssembly on several threads), and drives headless Chromium with Playwright (no GPU: WebAssembly). It times, in
the page, `window.litetext.segment(image, [prompt])` on a new image (encode + one prompt) and a second `segment`
with a new prompt on the same image (the re-prompt), then the same two calls on `litetext.load(export)` in a
process of its own. A warm-up image runs first on both; each case ends with a Markdown table row and the JSON
(`--json`) is rewritten after each case, so a case that fails or runs out of time keeps the others.

    .venv/bin/python scripts/bench_web.py                       # evm-504 evm-1008 s0-504 s0-1008
    .venv/bin/python scripts/bench_web.py evm-504 --repeats 3   # one case, three images

See docs/web.md ("Measured").
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import multiprocessing
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
#: case name: (litetext bench's random model name, label, input size)
CASES = {"evm-504": ("random-ev-m", "EV-M", 504), "evm-1008": ("random-ev-m", "EV-M", 1008),
         "s0-504": ("random-s0", "S0", 504), "s0-1008": ("random-s0", "S0", 1008)}
NATIVE_SIZE = 1008
IMAGE_SIZE = (1280, 960)  # as litetext bench
WARM_UP = ("astronaut.jpg", "bus")
IMAGES = ["cat.jpg", "coffee.jpg", "rocket.jpg"]
PROMPTS = [("person", "car"), ("dog", "bicycle"), ("tree", "window")]  # (first prompt, re-prompt) per image
THRESHOLD = 0.5


def log(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


# --- the export ------------------------------------------------------------------------------------------------

def _export_child(model: str, image_size: int) -> str:
    """Build the full-size random model and export it into litetext's cache (a child process: its memory goes
    when it ends)."""
    import torch

    from litetext.bench import RANDOM_VARIANTS
    from litetext.models.building import resize_model
    from litetext.models.random_weights import build_full_size_random_model
    from litetext.onnx.export import cached_export

    torch.set_num_threads(os.cpu_count() or 1)
    variant, student = RANDOM_VARIANTS[model]
    network, processor = build_full_size_random_model(variant, student=student, dtype=torch.float32)
    if image_size != NATIVE_SIZE:
        network, processor = resize_model(network, processor, image_size)
    with torch.inference_mode():
        return str(cached_export(model, "fp32", network=network, processor=processor,
                                 image_size=None if image_size == NATIVE_SIZE else image_size, log=log))


def export_for(model: str, image_size: int) -> Path:
    from litetext.onnx import is_export
    from litetext.onnx.export import export_directory

    directory, _ = export_directory(model, "fp32", image_size=None if image_size == NATIVE_SIZE else image_size)
    if is_export(directory):
        return directory
    log(f"exporting {model} at {image_size} px into {directory} (minutes) ...")
    started = time.perf_counter()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        path = Path(pool.submit(_export_child, model, image_size).result())
    log(f"  exported in {time.perf_counter() - started:.0f} s")
    return path


def sizes(export: Path) -> dict[str, int]:
    """Bytes: the whole export, and what the page downloads (its three graphs with their weights, the JSON files)."""
    manifest = json.loads((export / "manifest.json").read_text())
    page = {"manifest.json", "tokenizer.json", "tokenizer_config.json", "processor_config.json"}
    for role in ("vision_encoder", "text_encoder", "decoder"):
        page.update(manifest["graphs"][role]["files"])
    every = {p.name: p.stat().st_size for p in export.iterdir() if p.is_file()}
    vision = sum(manifest["graphs"]["vision_encoder"]["files"].values())
    return {"export_bytes": sum(every.values()), "page_download_bytes": sum(every[n] for n in page if n in every),
            "vision_encoder_bytes": vision}


# --- the site and its server -------------------------------------------------------------------------------------

class IsolatedHandler(http.server.SimpleHTTPRequestHandler):
    """http.server's static files, with the cross-origin isolation headers WebAssembly threads need."""

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format, *args) -> None:  # noqa: A002 (http.server's name)
        pass


def serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(IsolatedHandler,
                                                                               directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def build_site(export: Path, site: Path) -> None:
    from litetext.cli import main

    if main(["web", str(export), "--out", str(site), "--force"]) != 0:
        raise RuntimeError(f"litetext web {export} failed")
    from PIL import Image

    for name in [WARM_UP[0], *IMAGES]:
        Image.open(ROOT / "examples" / "images" / name).convert("RGB").resize(IMAGE_SIZE).save(
            site / name.replace(".jpg", ".png"))


def pictures(name: str):
    from PIL import Image

    return Image.open(ROOT / "examples" / "images" / name).convert("RGB").resize(IMAGE_SIZE)


# --- the browser -----------------------------------------------------------------------------------------------

class PeakRss:
    """The largest resident set of one Chromium process (the renderer holding WebAssembly's memory), sampled."""

    def __init__(self, root_pid: int):
        self.root_pid, self.peak, self._stop = root_pid, 0, threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(0.25):
            try:
                processes = psutil.Process(self.root_pid).children(recursive=True)
                self.peak = max([self.peak, *(p.memory_info().rss for p in processes)])
            except psutil.Error:
                pass

    def stop(self) -> int:
        self._stop.set()
        return self.peak


def chromium_version() -> str:
    return subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()


def run_browser(base: str, timeout_s: float, repeats: int) -> dict:
    """Load the page, warm up, then time encode + prompt and the re-prompt on each image. Failures are recorded,
    not raised."""
    import psutil
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    out: dict = {"ok": False, "runs": [], "console": []}
    deadline = time.monotonic() + timeout_s
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        driver = psutil.Process(os.getpid())
        root = next((p.pid for p in driver.children(recursive=True) if "chrom" in p.name().lower()), os.getpid())
        rss = PeakRss(root)
        page = browser.new_page()
        page.on("console", lambda message: out["console"].append(f"{message.type}: {message.text}"[:500]))
        page.on("pageerror", lambda error: out["console"].append(f"pageerror: {error}"[:500]))
        page.on("crash", lambda _: out.__setitem__("crashed", True))

        def settle(script: str, arg=None) -> dict:
            """Run `script` (a promise) in the page; wait for it until the case's deadline."""
            page.evaluate("([script, arg]) => { window.__done = undefined; const t0 = performance.now();"
                          " Promise.resolve((0, eval)(script)(arg)).then("
                          "   v => { window.__done = {ok: true, value: v, ms: performance.now() - t0}; },"
                          "   e => { window.__done = {ok: false, error: String(e && e.message || e),"
                          "                           ms: performance.now() - t0}; }); }", [script, arg])
            left = max(1.0, deadline - time.monotonic())
            page.wait_for_function("window.__done !== undefined", timeout=left * 1000, polling=200)
            return page.evaluate("window.__done")

        try:
            started = time.perf_counter()
            page.goto(f"{base}/site/index.html", timeout=60_000)
            loaded = settle("() => window.litetext.ready")
            out["load_s"] = time.perf_counter() - started
            if not loaded["ok"]:
                out["error"] = f"the model did not load: {loaded['error']}"
                return out
            out["page"] = page.evaluate("""async () => {
                const { ort } = await import('./litetext.js');
                return {backend: (await window.litetext.ready).backend, crossOriginIsolated,
                        hardwareConcurrency: navigator.hardwareConcurrency, numThreads: ort.env.wasm.numThreads,
                        label: document.getElementById('backend').textContent};
            }""")
            log(f"  page ready in {out['load_s']:.1f} s: {out['page']}")
            segment = "([image, prompt, threshold]) => window.litetext.segment(image, [prompt], {threshold})"
            warm = settle(segment, [WARM_UP[0].replace(".jpg", ".png"), WARM_UP[1], THRESHOLD])
            out["first_run_ms"] = warm["ms"]
            if not warm["ok"]:
                out["error"] = f"the first segment() failed: {warm['error']}"
                return out
            log(f"  warm-up (first image, cold): {warm['ms']:,.0f} ms")
            for image, (prompt, again) in list(zip(IMAGES, PROMPTS))[:repeats]:
                if time.monotonic() > deadline - 5:
                    break
                image = image.replace(".jpg", ".png")
                first = settle(segment, [image, prompt, THRESHOLD])
                first_status, first_timings = page.inner_text("#status"), page.evaluate("window.litetext.timings()")
                second = settle(segment, [image, again, THRESHOLD])
                second_status, second_timings = page.inner_text("#status"), page.evaluate("window.litetext.timings()")
                if not (first["ok"] and second["ok"]):
                    out["error"] = f"segment() failed: {first.get('error') or second.get('error')}"
                    return out
                run = {"image": image, "encode_prompt_ms": first["ms"], "reprompt_ms": second["ms"],
                       "instances": [len(first["value"]), len(second["value"])],
                       "status": [first_status, second_status]}
                run.update(page_encode_ms=first_timings["encodeImageMs"], page_prompt_ms=first_timings["promptsMs"],
                           page_reprompt_prompt_ms=second_timings["promptsMs"])
                out["runs"].append(run)
                log(f"  {image}: encode + prompt {first['ms']:,.0f} ms, re-prompt {second['ms']:,.0f} ms "
                    f"({first_status!r} / {second_status!r})")
            out["ok"] = bool(out["runs"])
        except PlaywrightError as error:
            out["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:400]}"
            try:
                out["page_message"] = page.inner_text("#message", timeout=2000)
                out["page_status"] = page.inner_text("#status", timeout=2000)
            except PlaywrightError:
                pass
        finally:
            out["peak_renderer_rss_mb"] = rss.stop() / 2**20
            out["console"] = out["console"][-20:]
            try:
                browser.close()
            except PlaywrightError:
                pass
    return out


# --- the Python ONNX engine --------------------------------------------------------------------------------------

def _python_child(export: str, repeats: int) -> dict:
    import litetext

    started = time.perf_counter()
    engine = litetext.load(export)
    out: dict = {"load_s": time.perf_counter() - started, "runs": []}
    warm = time.perf_counter()
    engine.segment(pictures(WARM_UP[0]), [WARM_UP[1]], threshold=THRESHOLD)
    out["first_run_ms"] = (time.perf_counter() - warm) * 1e3
    for image, (prompt, again) in list(zip(IMAGES, PROMPTS))[:repeats]:
        picture = pictures(image)
        t0 = time.perf_counter()
        first = engine.segment(picture, [prompt], threshold=THRESHOLD)
        t1 = time.perf_counter()
        second = engine.segment(picture, [again], threshold=THRESHOLD)
        t2 = time.perf_counter()
        out["runs"].append({"image": image, "encode_prompt_ms": (t1 - t0) * 1e3, "reprompt_ms": (t2 - t1) * 1e3,
                            "instances": [len(first.scores), len(second.scores)]})
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["ok"] = True
    return out


def run_python(export: Path, repeats: int) -> dict:
    try:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            return pool.submit(_python_child, str(export), repeats).result()
    except Exception as error:  # noqa: BLE001 (recorded in the report)
        return {"ok": False, "error": f"{type(error).__name__}: {error}"}


# --- the report --------------------------------------------------------------------------------------------------

def median(values: list[float]) -> float | None:
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def machine() -> dict:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")), "?")
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    import onnxruntime

    from litetext.cli.web import ONNXRUNTIME_WEB_VERSION

    return {"cpu": model, "cpu_count": os.cpu_count(), "avx512f": " avx512f" in flags,
            "avx512_vnni": " avx512_vnni" in flags, "memory_gb": round(os.sysconf("SC_PAGE_SIZE") *
                                                                       os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "chromium": chromium_version(), "onnxruntime_web": ONNXRUNTIME_WEB_VERSION,
            "onnxruntime": onnxruntime.__version__, "python": platform.python_version()}


def fmt(ms: float | None) -> str:
    return "-" if ms is None else f"{ms:,.0f}"


def table(cases: list[dict]) -> str:
    lines = ["| model | input | page download MB | runtime | load s | encode + prompt ms | re-prompt ms | "
             "in the model: encode / re-prompt ms | first image (cold) ms | peak RSS MB | note |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for case in cases:
        mb = f"{case['sizes']['page_download_bytes'] / 1e6:,.0f}" if "sizes" in case else "-"
        for runtime, key, peak in (("browser, WASM", "browser", "peak_renderer_rss_mb"),
                                   ("Python ONNX", "python", "peak_rss_mb")):
            result = case.get(key) or {}
            runs = result.get("runs", [])
            note = "" if result.get("ok") else (result.get("error") or case.get("error") or "not run")
            if key == "browser" and result.get("page"):
                note = f"{result['page']['numThreads']} threads; {note}"
            load = f"{result['load_s']:.1f}" if "load_s" in result else "-"
            stages = "-"
            if key == "browser" and runs and "page_encode_ms" in runs[0]:
                stages = (f"{fmt(median([r.get('page_encode_ms') for r in runs]))} / "
                          f"{fmt(median([r.get('page_reprompt_prompt_ms') for r in runs]))}")
            lines.append(f"| {case['label']} | {case['image_size']} | {mb} | {runtime} | {load} | "
                         f"{fmt(median([r['encode_prompt_ms'] for r in runs]))} | "
                         f"{fmt(median([r['reprompt_ms'] for r in runs]))} | {stages} | "
                         f"{fmt(result.get('first_run_ms'))} | "
                         f"{fmt(result.get(peak))} | {note.strip('; ')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", nargs="*", help=f"of {', '.join(CASES)} (default: all, in that order)")
    parser.add_argument("--repeats", type=int, default=2, help="timed images per case (1-3; the median is shown)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds for the browser part of one case")
    parser.add_argument("--work", default="/tmp/litetext-bench-web", help="where the sites go")
    parser.add_argument("--json", default=str(ROOT / "docs" / "bench" / "web-cpu-avx512.json"))
    parser.add_argument("--skip-python", action="store_true", help="time the browser only")
    parser.add_argument("--export", metavar="DIR", help="time this ONNX export instead of the cases")
    args = parser.parse_args(argv)
    repeats = max(1, min(args.repeats, len(IMAGES)))
    args.cases = args.cases or list(CASES)
    if unknown := [name for name in args.cases if name not in CASES]:
        parser.error(f"unknown case {', '.join(unknown)}; choose from {', '.join(CASES)}")

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine(), "settings": {"image": list(IMAGE_SIZE), "threshold": THRESHOLD, "prompts": 1,
                                                 "chromium_args": CHROMIUM_ARGS},
              "cases": []}
    log(f"machine: {report['machine']}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    if args.export:
        manifest = json.loads((Path(args.export) / "manifest.json").read_text())
        CASES["export"] = (args.export, Path(manifest["model"]).name, manifest["image_size"])
        args.cases = ["export"]
    if Path(args.json).exists():  # cases run earlier (on this machine, another call) stay, in CASES' order
        report["cases"] = [case for case in json.loads(Path(args.json).read_text()).get("cases", [])
                           if case.get("case") not in args.cases]
    order = list(CASES)
    for name in args.cases:
        model, label, image_size = CASES[name]
        case: dict = {"case": name, "model": model, "label": label, "image_size": image_size, "repeats": repeats,
                      "when": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        report["cases"].append(case)
        report["cases"].sort(key=lambda c: order.index(c["case"]) if c.get("case") in order else len(order))
        log(f"== {name}: {model} at {image_size} px")
        try:
            export = Path(model) if name == "export" else export_for(model, image_size)
            case["export"] = str(export)
            case["sizes"] = sizes(export)
            root = work / name
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            build_site(export, root / "site")
            server, base = serve(root)
            try:
                case["browser"] = run_browser(base, args.timeout, repeats)
            finally:
                server.shutdown()
                server.server_close()
            log(f"  browser: {json.dumps({k: v for k, v in case['browser'].items() if k != 'console'})[:600]}")
            if not args.skip_python:
                case["python"] = run_python(export, repeats)
                log(f"  python: {json.dumps(case['python'])[:400]}")
        except Exception as error:  # noqa: BLE001 (recorded; the next case still runs)
            case["error"] = f"{type(error).__name__}: {error}"
            log(f"  failed: {case['error']}")
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(table(report["cases"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
