"""Shared constants and helpers of the Label Studio backend tests: labelling configs, paths, the fake LS token, test
clips and what their tracks should come back as."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import stop_process as stop

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "images"
TOKEN = "test-token-0123456789abcdef"

BRUSH_CONFIG = """
<View>
  <Image name="image" value="$image"/>
  <BrushLabels name="tag" toName="image">
    <Label value="Cat" background="red"/>
    <Label value="Mug" prompt="coffee cup" background="blue"/>
    <Label value="Person" predicted_values="astronaut,person" background="green"/>
  </BrushLabels>
</View>
"""

MIXED_CONFIG = """
<View>
  <Image name="image" value="$image"/>
  <Choices name="quality" toName="image"><Choice value="good"/><Choice value="bad"/></Choices>
  <PolygonLabels name="poly" toName="image" model_score_threshold="0.55">
    <Label value="Cat" prompt="cat"/>
  </PolygonLabels>
  <RectangleLabels name="box" toName="image">
    <Label value="Cat"/>
    <Label value="Cup" prompt="coffee cup"/>
  </RectangleLabels>
  <BrushLabels name="skipped" toName="image" model_skip="true">
    <Label value="Sky"/>
  </BrushLabels>
  <KeyPointLabels name="points" toName="image"><Label value="Eye"/></KeyPointLabels>
</View>
"""

INTERACTIVE_CONFIG = """
<View>
  <Image name="image" value="$image"/>
  <TextArea name="prompt" toName="image" editable="true" rows="1" placeholder="what to segment"/>
  <RectangleLabels name="exemplar" toName="image" smart="true" model_skip="true">
    <Label value="Cat"/>
  </RectangleLabels>
  <BrushLabels name="tag" toName="image" smart="true">
    <Label value="Cat"/>
    <Label value="Mug" prompt="coffee cup"/>
  </BrushLabels>
</View>
"""

#: Label Studio's video object tracking config (its "Video object tracking" template, as the SAM2 video backend's
#: README gives it): the `Labels` on the video are the prompts, the `VideoRectangle` draws the tracks.
VIDEO_CONFIG = """
<View>
  <Labels name="videoLabels" toName="video" allowEmpty="true">
    <Label value="Cat" prompt="cat" background="#11A39E"/>
    <Label value="Dog" prompt="dog" background="#D4380D"/>
  </Labels>
  <Video name="video" value="$video"/>
  <VideoRectangle name="box" toName="video"/>
</View>
"""
VIDEO_LABELS = {"cat": "Cat", "dog": "Dog"}  # prompt -> label
CLIP_FRAMES, CLIP_FPS = 6, 24  # Label Studio numbers frames at the Video tag's framerate, 24 when not set

#: The labelling config of Label Studio's own SAM backend (HumanSignal/label-studio-ml-backend,
#: label_studio_ml/examples/segment_anything_model/README.md, "When using the AdvancedSAM", verbatim): a BrushLabels
#: output "tag", smart KeyPointLabels "tag2" and smart RectangleLabels "tag3" as the annotator's tools.
SAM_CONFIG = Path(__file__).with_name("sam_labeling_config.xml").read_text()


def sam_pixels(value: dict, width: int, height: int) -> tuple[list[int], list[int]]:
    """A drawn region's point (x, y) and box (x1, y1, x2, y2) in pixels, converted as Label Studio's SAM backends
    (segment_anything_model, segment_anything_2_image) do: percent of the image size, truncated with int()."""
    x, y = value["x"] * width / 100, value["y"] * height / 100
    point = [int(x), int(y)]
    if "width" not in value or "height" not in value:
        return point, []
    w, h = value["width"] * width / 100, value["height"] * height / 100
    return point, [int(x), int(y), int(w + x), int(h + y)]


def write_clip(path: Path, *, frames: int = CLIP_FRAMES, fps: float = CLIP_FPS) -> Path:
    """A small H.264 MP4 (160x120): the cat photo sliding left two pixels a frame."""
    from PIL import Image

    import litetext

    base = Image.open(EXAMPLES / "cat.jpg").convert("RGB").resize((160, 120))
    with litetext.VideoWriter(path, fps=fps) as writer:
        for i in range(frames):
            writer.write(base.transform(base.size, Image.AFFINE, (1, 0, 2 * i, 0, 1, 0)))
    return path


def expected_tracks(frames, label_of: dict[str, str], framerate: float = CLIP_FPS) -> dict[int, dict]:
    """What each tracked object should come back as, from `engine.track`'s frames: its label and keyframes (a
    keyframe per frame it is in; disabled on its last frame before a frame without it), keyed by object id."""
    frames = list(frames)
    seen = [{instance.object_id for instance in tracked.result if instance.mask.any()} for tracked in frames]
    expected: dict[int, dict] = {}
    for position, tracked in enumerate(frames):
        width, height = tracked.result.image_size
        for instance in tracked.result:
            if instance.object_id not in seen[position]:
                continue
            x1, y1, x2, y2 = (float(v) for v in instance.box)
            gone_next = position + 1 < len(frames) and instance.object_id not in seen[position + 1]
            entry = expected.setdefault(int(instance.object_id), {"labels": [label_of[instance.prompt]],
                                                                  "sequence": []})
            entry["sequence"].append({"frame": tracked.index + 1, "x": 100 * x1 / width, "y": 100 * y1 / height,
                                      "width": 100 * (x2 - x1) / width, "height": 100 * (y2 - y1) / height,
                                      "enabled": not gone_next, "rotation": 0,
                                      "time": (tracked.index + 1) / framerate})
    return expected


def assert_regions_match(regions: list[dict], expected: dict[int, dict], *, frames: int = CLIP_FRAMES,
                         fps: float = CLIP_FPS) -> None:
    """`regions` are the `videorectangle` regions of `expected` (by object id, in order), in Label Studio's shape."""
    assert len(regions) == len(expected) > 0
    for region, (_, track) in zip(regions, sorted(expected.items())):
        assert set(region) == {"id", "from_name", "to_name", "type", "score", "readonly", "value"}
        assert (region["from_name"], region["to_name"], region["type"]) == ("box", "video", "videorectangle")
        value = region["value"]
        assert set(value) == {"framesCount", "duration", "sequence", "labels"}
        assert value["framesCount"] == frames and value["duration"] == pytest.approx(frames / fps)
        assert value["labels"] == track["labels"]
        assert [k["frame"] for k in value["sequence"]] == [k["frame"] for k in track["sequence"]]
        for got, want in zip(value["sequence"], track["sequence"]):
            assert set(got) == set(want)
            assert (got["enabled"], got["rotation"]) == (want["enabled"], want["rotation"])
            assert [got[k] for k in ("x", "y", "width", "height", "time")] == pytest.approx(
                [want[k] for k in ("x", "y", "width", "height", "time")], abs=1e-6)
    assert len({r["id"] for r in regions}) == len(regions)


# Real servers (slow tests) --------------------------------------------------------------------------------

LABEL_STUDIO_VERSION = "1.23.*"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process, timeout: float, log: Path | None = None) -> None:
    """Poll `url` until it answers 200; fail with the server's log if `process` dies or time runs out."""
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not come up in {timeout:.0f}s:\n{_tail(log)}")


def start_backend(tmp_path: Path, *, model: str = "tiny-random",
                  env_extra: dict[str, str] | None = None) -> tuple[str, object]:
    """Start `python -m litetext_label_studio` (`model`, CPU) on 127.0.0.1; returns (url, process)."""
    import os
    import subprocess
    import sys

    port = free_port()
    log = tmp_path / f"backend-{port}.log"
    env = {**os.environ, "LITETEXT_DEVICE": "cpu", "LOG_LEVEL": "WARNING", **(env_extra or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "litetext_label_studio", "--host", "127.0.0.1", "--port", str(port),
         "--model", model], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/health", process, timeout=180, log=log)
    except Exception:
        stop(process)
        raise
    return url, process


def label_studio_venv() -> Path:
    """Label Studio's own virtual environment: $LITETEXT_LS_VENV, else one under the user cache directory,
    created (pip install label-studio) on first use. Never inside the repository."""
    import fcntl
    import os
    import subprocess
    import sys

    if os.environ.get("LITETEXT_LS_VENV"):
        venv = Path(os.environ["LITETEXT_LS_VENV"])
    else:
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        venv = cache / "litetext" / "test-envs" / "label-studio-1.23"
    venv.parent.mkdir(parents=True, exist_ok=True)
    # Test workers that start Label Studio at once take turns: one installs, the others find it installed.
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / "bin" / "label-studio").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"label-studio=={LABEL_STUDIO_VERSION}"],
                           check=True, timeout=1800)
    return venv


def _tail(log: Path | None, lines: int = 40) -> str:
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
