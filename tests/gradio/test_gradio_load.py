"""A bounded load on the launched Gradio app: many concurrent /segment requests from a second process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gradio.gradio_helpers import start_app, stop
from tests.gradio.gradio_load_client import digest

pytestmark = pytest.mark.slow

REQUESTS = 60
CONCURRENCY = 6
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "images"
JOBS = [("cat.jpg", "cat"), ("coffee.jpg", "coffee cup, spoon"), ("astronaut.jpg", "person, flag"),
        ("rocket.jpg", "rocket, smoke"), ("cat.jpg", "dog, ear"), ("coffee.jpg", "plate")]


def test_concurrent_requests_are_all_answered_and_match_the_serial_results(litetext_cache, tmp_path):
    from gradio_client import Client, handle_file

    jobs = [{"image": str(EXAMPLES / name), "prompts": prompts} for name, prompts in JOBS]
    url, process = start_app(tmp_path, litetext_cache)
    try:
        client = Client(url, verbose=False)
        serial = [digest(client.predict(handle_file(job["image"]), job["prompts"], 0.5, 0.5, "", "",
                                        api_name="/segment")) for job in jobs]
        assert len(set(serial)) == len(jobs)  # every job has its own answer, so a mix-up would show
        (tmp_path / "jobs.json").write_text(json.dumps(jobs))
        script = Path(__file__).with_name("gradio_load_client.py")
        subprocess.run([sys.executable, str(script), url, str(tmp_path / "jobs.json"), str(REQUESTS),
                        str(CONCURRENCY), str(tmp_path / "out.json")], check=True, timeout=900)
        report = json.loads((tmp_path / "out.json").read_text())
        answers = report["answers"]
        assert sorted(a["index"] for a in answers) == list(range(REQUESTS))  # every request answered
        assert [a.get("error") for a in answers if not a["ok"]] == []  # zero errors
        assert all(a["digest"] == serial[a["job"]] for a in answers)  # no response mixed up
        stats = report["stats"]
        print(f"\ngradio load: {REQUESTS} requests, {CONCURRENCY} concurrent: {stats['requests_per_s']:.2f} req/s, "
              f"p50 {stats['p50_ms']:.0f} ms, p99 {stats['p99_ms']:.0f} ms, {stats['seconds']:.1f} s")
        assert client.predict(handle_file(jobs[0]["image"]), "cat", 0.5, 0.5, "", "", api_name="/segment")
    finally:
        stop(process)
