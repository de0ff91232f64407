"""The load generator of test_gradio_load.py, run as a second process: `python gradio_load_client.py URL JOBS N
CONCURRENCY OUT`. Sends N /segment requests (job i % len(JOBS)) from CONCURRENCY threads, each with its own
gradio_client Client, and writes every answer (job, ok, digest of prompts+instances, latency) and the stats."""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor


def digest(data: dict) -> str:
    """What must not get mixed up between requests: prompts, image size and every instance."""
    kept = {key: data[key] for key in ("prompts", "image_size", "instances")}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()


def main(url: str, jobs_path: str, count: int, concurrency: int, out: str) -> None:
    from gradio_client import Client, handle_file

    jobs = json.loads(open(jobs_path).read())
    local = threading.local()

    def call(index: int) -> dict:
        if not hasattr(local, "client"):
            local.client = Client(url, verbose=False)
        job = jobs[index % len(jobs)]
        started = time.perf_counter()
        try:
            data = local.client.predict(handle_file(job["image"]), job["prompts"], 0.5, 0.5, "", "",
                                        api_name="/segment")
            answer = {"ok": True, "digest": digest(data)}
        except Exception as error:  # noqa: BLE001 - reported, the test fails on it
            answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        return {"index": index, "job": index % len(jobs), "ms": (time.perf_counter() - started) * 1000, **answer}

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        answers = list(pool.map(call, range(count)))
    seconds = time.perf_counter() - started
    latencies = sorted(a["ms"] for a in answers)
    stats = {"seconds": seconds, "requests_per_s": count / seconds, "p50_ms": latencies[len(latencies) // 2],
             "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]}
    with open(out, "w") as file:
        json.dump({"answers": answers, "stats": stats}, file)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
