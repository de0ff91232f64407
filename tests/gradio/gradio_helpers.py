"""Start and stop the Gradio app (`python -m litetext_gradio.cli`) in a subprocess on 127.0.0.1 for slow tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import stop_process as stop


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app(log_dir: Path, cache: Path, *extra: str, env: dict[str, str] | None = None,
              timeout: float = 180) -> tuple[str, subprocess.Popen]:
    """Launch the app with the tiny-random model on CPU; returns (url, process) once the page answers."""
    port = free_port()
    log_path = log_dir / f"app-{port}.log"
    environment = {**os.environ, "LITETEXT_CACHE": str(cache), "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "litetext_gradio.cli", "--model", "tiny-random", "--device", "cpu",
             "--port", str(port), *extra], stdout=log, stderr=subprocess.STDOUT, env=environment,
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=5).close()
            return url, process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop(process)
                raise RuntimeError(f"the app did not start:\n{log_path.read_text()[-3000:]}") from None
            time.sleep(0.5)
