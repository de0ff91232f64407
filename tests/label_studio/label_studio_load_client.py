"""Load generator for the backend, run as a separate process by test_label_studio_load.py.

    python label_studio_load_client.py URL PAYLOADS.json REQUESTS CONCURRENCY OUT.json

Sends REQUESTS POST /predict requests (cycling through the payloads) with CONCURRENCY in flight, and writes
each answer's status and body digest plus latency statistics to OUT.json.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import sys
import time

import httpx


def body_digest(content: bytes) -> str:
    """SHA-256 of a /predict answer with its region ids left out (they are fresh on every call); of the raw
    bytes when the answer is not JSON."""
    try:
        body = json.loads(content)
    except ValueError:
        return hashlib.sha256(content).hexdigest()
    for prediction in body.get("results", []) if isinstance(body, dict) else []:
        for region in prediction.get("result", []):
            region.pop("id", None)
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def main(url: str, payloads_path: str, requests: int, concurrency: int, out_path: str) -> int:
    payloads = json.loads(open(payloads_path).read())
    bodies = [json.dumps(p).encode() for p in payloads]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(base_url=url, timeout=300, limits=limits) as client:

        def send(number: int) -> dict:
            which = number % len(bodies)
            started = time.perf_counter()
            try:
                response = client.post("/predict", content=bodies[which],
                                       headers={"Content-Type": "application/json"})
                status, content = response.status_code, response.content
            except httpx.HTTPError as error:
                status, content = 0, repr(error).encode()
            return {"number": number, "payload": which, "status": status, "seconds": time.perf_counter() - started,
                    "digest": body_digest(content), "tasks": len(payloads[which]["tasks"])}

        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
            answers = list(pool.map(send, range(requests)))
        elapsed = time.perf_counter() - started
    latencies = sorted(a["seconds"] for a in answers)
    stats = {"requests": requests, "concurrency": concurrency, "seconds": elapsed,
             "requests_per_s": requests / elapsed, "tasks_per_s": sum(a["tasks"] for a in answers) / elapsed,
             "p50_ms": latencies[len(latencies) // 2] * 1e3,
             "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1e3}
    with open(out_path, "w") as out:
        json.dump({"answers": answers, "stats": stats}, out)
    return 0


if __name__ == "__main__":
    url, payloads, requests, concurrency, out = sys.argv[1:6]
    sys.exit(main(url, payloads, int(requests), int(concurrency), out))
