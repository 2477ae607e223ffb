"""`identigraph serve` under a bounded load on loopback (issue 20): start-up time and memory,
and p50 / p99 latency and throughput of the read endpoints.

    python benchmarks/bench_serve.py [--customers 40000] [--requests 4000] [--concurrency 4]

Generates the synthetic channel data (seed 13; about 2.4 records per customer, so 40,000
customers are ~100k records and 420,000 are ~1M), resolves it, builds the graph tables and
scores risk (`--no-embeddings`: the similar endpoint then needs `--embed`), all cached in
``.bench/serve-<customers>``. Then it starts `identigraph serve` in its own process, times
it to /readyz, reads its resident memory, and sends ``--requests`` requests per endpoint
from ``--concurrency`` threads with keep-alive connections, each a random customer.
Load generator and server share the machine's cores. Results: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from identigraph.serve.keys import add_key  # noqa: E402

IG = [sys.executable, "-m", "identigraph.cli.app"]


def _run(*arguments: str) -> None:
    subprocess.run([*IG, *arguments], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                   stdout=subprocess.DEVNULL)


def prepare(customers: int, work: Path, embed: bool) -> tuple[Path, Path]:
    data, resolved, tables = work / "data", work / "resolved", work / "tables"
    if not (data / "linkage.toml").exists():
        _run("generate", "--customers", str(customers), "--out", str(data), "--seed", "13")
    if not (resolved / "golden.parquet").exists():
        _run("resolve", str(data), "--config", str(data / "linkage.toml"), "--out", str(resolved))
    if not (tables / "nodes").exists():
        _run("graph", "build", str(resolved), "--events", str(data), "--out", str(tables))
    if embed and not (tables / "embeddings" / "embeddings.parquet").exists():
        _run("embed", str(tables))
    if not (tables / "risk.parquet").exists():
        _run("score", str(tables), *([] if embed else ["--no-embeddings"]))
    return resolved, tables


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) MB of a process, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def start_server(resolved: Path, tables: Path | None, work: Path,
                 scopes: tuple[str, ...] = ("read",)) -> tuple[subprocess.Popen, int, str, float]:
    """`identigraph serve` in its own process with a fresh key of ``scopes``: (process, port,
    key, seconds until /readyz answered)."""
    keys_file = work / "keys.json"
    keys_file.unlink(missing_ok=True)
    key = add_key(keys_file, "bench", list(scopes))
    port = _free_port()
    started = time.perf_counter()
    server = subprocess.Popen([*IG, "serve", str(resolved), *(["--tables", str(tables)] if tables else []),
                               "--port", str(port), "--keys", str(keys_file)],
                              env={**os.environ, "PYTHONPATH": str(ROOT)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        if server.poll() is not None:
            raise SystemExit(f"identigraph serve {resolved} exited with status {server.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.1)
    return server, port, key, time.perf_counter() - started


def send_all(port: int, key: str, requests: list[tuple[str, str, dict | None]],
             concurrency: int) -> tuple[list[tuple[int, bytes]], list[float], float]:
    """Every (method, path, JSON body or None) once, from ``concurrency`` threads with keep-alive
    connections: each one's (status, body) and milliseconds, in order, and the seconds in all."""
    answers: list[tuple[int, bytes]] = [(0, b"")] * len(requests)
    latencies = [0.0] * len(requests)
    next_request = iter(range(len(requests)))
    taking = threading.Lock()

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        while True:
            with taking:
                i = next(next_request, None)
            if i is None:
                break
            method, path, body = requests[i]
            started = time.perf_counter()
            connection.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
            response = connection.getresponse()
            answers[i] = (response.status, response.read())
            latencies[i] = (time.perf_counter() - started) * 1000
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers, latencies, time.perf_counter() - started


WRK_SCRIPT = """
local bodies = {BODIES}
local requests = {}
local next_one = 0
init = function(args)
  for i, body in ipairs(bodies) do
    requests[i] = wrk.format("POST", "PATH", {["Authorization"] = "Bearer KEY",
                                             ["Content-Type"] = "application/json"}, body)
  end
end
request = function()
  next_one = next_one % #requests + 1
  return requests[next_one]
end
done = function(summary, latency, requests)
  io.write(string.format("WRK {\\"requests\\": %d, \\"seconds\\": %f, \\"p50_ms\\": %f, \\"p99_ms\\": %f, "
    .. "\\"max_ms\\": %f, \\"non_2xx\\": %d, \\"socket_errors\\": %d}\\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def post_with_wrk(port: int, key: str, path: str, bodies: list[dict], connections: int, seconds: float,
                  work: Path) -> dict:
    """POST ``bodies`` in turn for ``seconds`` from wrk (C, one thread, ``connections``
    keep-alive connections, each sending its next request when the last is answered): a
    load generator that takes a few per cent of a core, where Python's threads took a third
    of the two cores the server needs. Its p50 / p99 latency and requests per second."""
    lua = "{" + ",".join(json.dumps(json.dumps(body)) for body in bodies) + "}"
    script = work / "wrk_post.lua"
    script.write_text(WRK_SCRIPT.replace("{BODIES}", lua).replace("PATH", path).replace("KEY", key))
    output = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s",
                             "-s", str(script), f"http://127.0.0.1:{port}"],
                            check=True, capture_output=True, text=True).stdout
    found = json.loads(next(line[4:] for line in output.splitlines() if line.startswith("WRK ")))
    return {"requests": found["requests"], "non_2xx": found["non_2xx"], "socket_errors": found["socket_errors"],
            "p50_ms": round(found["p50_ms"], 2), "p99_ms": round(found["p99_ms"], 2),
            "max_ms": round(found["max_ms"], 2), "per_second": round(found["requests"] / found["seconds"], 1)}


def tree_memory_mb(pid: int) -> dict:
    """Resident and proportional (PSS: shared pages split between the processes sharing
    them) MB of a process and its children (the match processes are forks sharing its
    pages: their resident sizes added up would count those pages several times)."""
    import psutil

    root = psutil.Process(pid)
    processes = [root, *root.children(recursive=True)]
    return {"processes": len(processes),
            "rss_mb_each": [round(p.memory_info().rss / 2**20) for p in processes],
            "pss_mb_total": round(sum(p.memory_full_info().pss for p in processes) / 2**20)}


def latency_report(answers: list[tuple[int, bytes]], latencies: list[float], seconds: float) -> dict:
    statuses: dict[int, int] = {}
    for status, _ in answers:
        statuses[status] = statuses.get(status, 0) + 1
    return {"requests": len(latencies), "statuses": statuses,
            "p50_ms": round(float(np.percentile(latencies, 50)), 2),
            "p99_ms": round(float(np.percentile(latencies, 99)), 2),
            "per_second": round(len(latencies) / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=40_000)
    parser.add_argument("--requests", type=int, default=4_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--embed", action="store_true", help="also train embeddings, for /similar")
    args = parser.parse_args()
    work = ROOT / ".bench" / f"serve-{args.customers}"
    resolved, tables = prepare(args.customers, work, args.embed)
    records = len(pd.read_parquet(resolved / "entities.parquet", columns=["entity_id"]))
    ids = pd.read_parquet(resolved / "golden.parquet", columns=["entity_id"])["entity_id"].tolist()
    server, port, key, startup = start_server(resolved, tables, work)
    try:
        memory = _memory_mb(server.pid)
        rng = random.Random(1)
        report = {"records": records, "customers": len(ids), "startup_s": round(startup, 2),
                  "rss_mb_after_start": round(memory[0]), "endpoints": {}}
        endpoints = {"GET /v1/customers/{id}": "/v1/customers/{}", "GET /v1/customers/{id}/risk": "/v1/customers/{}/risk"}
        if args.embed:
            endpoints["GET /v1/customers/{id}/similar?k=10"] = "/v1/customers/{}/similar?k=10"
        for name, template in endpoints.items():
            warm = [("GET", template.format(rng.choice(ids)), None) for _ in range(200)]
            send_all(port, key, warm, args.concurrency)
            requests = [("GET", template.format(rng.choice(ids)), None) for _ in range(args.requests)]
            report["endpoints"][name] = latency_report(*send_all(port, key, requests, args.concurrency))
        report["rss_mb_peak"] = round(_memory_mb(server.pid)[1])
    finally:
        server.terminate()
        server.wait(timeout=60)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
