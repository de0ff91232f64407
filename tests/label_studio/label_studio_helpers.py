"""Shared constants of the Label Studio backend tests: labelling configs, paths, the fake LS token."""

from __future__ import annotations

from pathlib import Path

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

#: The labelling config of Label Studio's own SAM backend (HumanSignal/label-studio-ml-backend,
#: label_studio_ml/examples/segment_anything_model/README.md, "When using the AdvancedSAM", verbatim): a BrushLabels
#: output "tag", smart KeyPointLabels "tag2" and smart RectangleLabels "tag3" as the annotator's tools.
SAM_CONFIG = Path(__file__).with_name("sam_labeling_config.xml").read_text()


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


def start_backend(tmp_path: Path, *, env_extra: dict[str, str] | None = None) -> tuple[str, object]:
    """Start `python -m litetext_label_studio` (tiny-random, CPU) on 127.0.0.1; returns (url, process)."""
    import os
    import subprocess
    import sys

    port = free_port()
    log = tmp_path / f"backend-{port}.log"
    env = {**os.environ, "LITETEXT_DEVICE": "cpu", "LOG_LEVEL": "WARNING", **(env_extra or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "litetext_label_studio", "--host", "127.0.0.1", "--port", str(port),
         "--model", "tiny-random"], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
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
    import os
    import subprocess
    import sys

    if os.environ.get("LITETEXT_LS_VENV"):
        venv = Path(os.environ["LITETEXT_LS_VENV"])
    else:
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        venv = cache / "litetext" / "test-envs" / "label-studio-1.23"
    if not (venv / "bin" / "label-studio").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"label-studio=={LABEL_STUDIO_VERSION}"],
                       check=True, timeout=1800)
    return venv


def _tail(log: Path | None, lines: int = 40) -> str:
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
