"""A bounded load test: many concurrent /predict requests from a second process against one backend."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.label_studio.label_studio_helpers import BRUSH_CONFIG, start_backend, stop
from tests.label_studio.label_studio_load_client import body_digest

pytestmark = pytest.mark.slow
httpx = pytest.importorskip("httpx")

REQUESTS = 200
CONCURRENCY = 8
NAMES = ["cat", "coffee", "astronaut", "rocket"]


def test_concurrent_predictions_are_all_answered_and_identical_to_serial_runs(tmp_path, image_server,
                                                                               litetext_cache):
    url, process = start_backend(tmp_path, env_extra={"LITETEXT_CACHE": str(litetext_cache), "THREADS": "4"})
    try:
        # Each payload: two tasks (batched in one request) with their own ids.
        payloads = [
            {"tasks": [{"id": 10 * k + j, "data": {"image": f"{image_server}/{NAMES[(k + j) % 4]}.jpg"}}
                       for j in range(2)],
             "project": "1.1700000000", "label_config": BRUSH_CONFIG, "params": {"context": None}}
            for k in range(len(NAMES))
        ]
        with httpx.Client(base_url=url, timeout=300) as client:
            serial = [client.post("/predict", content=json.dumps(p).encode(),
                                  headers={"Content-Type": "application/json"}) for p in payloads]
        assert all(r.status_code == 200 and r.json()["errors"] == [] for r in serial)
        assert all(len(r.json()["results"]) == 2 and r.json()["results"][0]["result"] for r in serial)
        reference = [body_digest(r.content) for r in serial]

        (tmp_path / "payloads.json").write_text(json.dumps(payloads))
        client_script = Path(__file__).with_name("label_studio_load_client.py")
        subprocess.run([sys.executable, str(client_script), url, str(tmp_path / "payloads.json"), str(REQUESTS),
                        str(CONCURRENCY), str(tmp_path / "out.json")], check=True, timeout=900)
        report = json.loads((tmp_path / "out.json").read_text())
        answers = report["answers"]
        assert len(answers) == REQUESTS
        assert [a["status"] for a in answers] == [200] * REQUESTS  # every request answered
        assert all(a["digest"] == reference[a["payload"]] for a in answers)  # none lost; equal but for ids
        metrics = httpx.get(f"{url}/metrics").json()
        assert metrics["tasks_predicted"] == 2 * (REQUESTS + len(payloads)) and metrics["tasks_failed"] == 0
        stats = report["stats"]
        print(f"\nload: {REQUESTS} requests x 2 tasks, {CONCURRENCY} concurrent: {stats['requests_per_s']:.1f} req/s, "
              f"{stats['tasks_per_s']:.1f} tasks/s, p50 {stats['p50_ms']:.0f} ms, p99 {stats['p99_ms']:.0f} ms")
    finally:
        stop(process)
