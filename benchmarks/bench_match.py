"""`POST /v1/match` and `POST /v1/records` on held-out records (issue 20): the customer the
API gives each one beside the customer a batch run with the same model gives it, and the
latency and throughput.

    python benchmarks/bench_match.py [--records 100000] [--held-out 1000] [--concurrency 4,16,32]

Generates the synthetic channel data (seed 9, about 2.4 records per customer), holds out
``--held-out`` records chosen by a hash of their row (benchmarks/bench_incremental.py's
split), resolves the rest, and links the held-out ones as a batch against that run with its
saved model (`resolve --previous`). `identigraph serve` then serves the run without them;
each held-out record is sent to `POST /v1/match` as its source's row, by semantic type. The
API agrees with the batch when it names the earlier customer the batch put the record in,
or no customer where the batch made it a new one. Then the same records are sent again from
each ``--concurrency`` (threads with keep-alive connections) for latency and throughput,
and, where wrk is installed (Debian's package), from wrk with each ``--wrk-connections`` for
``--wrk-seconds``: the same closed loop (each connection sends its next request when the last
is answered) from a generator that leaves the server the cores Python's threads took.

Then the held-out records are written (`POST /v1/records`, 16 writers): acknowledged writes
per second; the server is restarted (start-up with the log replayed), and
`resolve --previous` reads the log as a batch: how many written records keep the customer
id the API gave them. Results: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_incremental import CHANNELS, split_batch  # noqa: E402
from bench_serve import (  # noqa: E402
    _memory_mb,
    latency_report,
    post_with_wrk,
    send_all,
    start_server,
    tree_memory_mb,
    wrk_available,
)

from identigraph.resolution.config import load_config  # noqa: E402
from identigraph.resolution.io import read_table  # noqa: E402

IG = [sys.executable, "-m", "identigraph.cli.app"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _timed(*arguments: str) -> float:
    started = time.perf_counter()
    subprocess.run([*IG, *arguments], check=True, env=ENV, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def bodies(batch: Path, config_path: Path) -> list[tuple[str, dict]]:
    """(record key, match body) of every held-out record."""
    config = load_config(config_path)
    out = []
    for name in CHANNELS:
        source = Path(name).stem
        fields = {c: kind for c, kind in config.for_source(source).fields.items() if kind != "ignore"}
        id_column = config.for_source(source).id_column
        for row in read_table(batch / name).astype(object).where(lambda f: f.notna(), None).to_dict("records"):
            body = {"source": source, "record_id": str(row[id_column])}
            body |= {kind: str(row[c]) for c, kind in fields.items() if row.get(c) not in (None, "")}
            out.append((f"{source}:{row[id_column]}", body))
    return out


def main() -> None:
    from identigraph.synthetic import GeneratorConfig, generate_dataset

    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--held-out", type=int, default=1_000)
    parser.add_argument("--concurrency", default="4,16,32", help="comma-separated client threads")
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--wrk-connections", default="4,6,8,12,16",
                        help="comma-separated connections of the wrk runs (when wrk is installed)")
    parser.add_argument("--wrk-seconds", type=float, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        generate_dataset(GeneratorConfig(customers=int(args.records / 2.4), seed=9), work / "data")
        held = split_batch(work / "data", work / "existing", work / "batch", work / "all", args.held_out)
        config = work / "data" / "linkage.toml"
        _timed("resolve", str(work / "existing"), "--config", str(config), "--out", str(work / "base"))
        _timed("resolve", str(work / "batch"), "--previous", str(work / "base"), "--out", str(work / "batch_run"))
        base = pd.read_parquet(work / "base" / "entities.parquet")
        earlier = set(base["entity_id"])
        base_entity = dict(zip(base["source"] + ":" + base["record_id"].astype(str), base["entity_id"]))
        linked = pd.read_parquet(work / "batch_run" / "entities.parquet")
        linked["key"] = linked["source"] + ":" + linked["record_id"].astype(str)
        # The earlier customers the batch put each record with (ids may have changed in a merge).
        joined_with = {entity: {base_entity[k] for k in keys if k in base_entity}
                       for entity, keys in linked.groupby("entity_id")["key"]}
        batch_entity = dict(zip(linked["key"], linked["entity_id"]))
        server, port, key, startup = start_server(work / "base", None, work, ("read", "write"))
        loaded = {}
        try:
            memory = _memory_mb(server.pid)
            memory_at_start = tree_memory_mb(server.pid)
            items = bodies(work / "batch", config)
            requests = [("POST", "/v1/match", body) for _, body in items]
            replies, sequential, _ = send_all(port, key, requests, 1)
            answers = [json.loads(reply) for _, reply in replies]
            agree, compared, disagreements = 0, 0, []
            for (record, _), answer in zip(items, answers):
                if record not in batch_entity:  # quarantined by the batch run
                    continue
                expected = joined_with[batch_entity[record]]  # empty: the batch made it a new customer
                compared += 1
                if (answer.get("would_join") in expected) if expected else answer.get("would_join") is None:
                    agree += 1
                elif len(disagreements) < 5:
                    disagreements.append({"record": record, "api": answer.get("would_join"),
                                          "batch": sorted(expected) or None})
            for concurrency in [int(c) for c in args.concurrency.split(",")]:
                loaded[f"concurrency_{concurrency}"] = latency_report(*send_all(port, key, requests, concurrency))
            if wrk_available():
                for connections in [int(c) for c in args.wrk_connections.split(",")]:
                    loaded[f"wrk_{connections}_connections"] = post_with_wrk(
                        port, key, "/v1/match", [body for _, body in items], connections, args.wrk_seconds, work)
            else:
                print("wrk is not installed (Debian: apt-get install wrk): only Python's threads load the server",
                      file=sys.stderr)
            loaded["memory_under_load"] = tree_memory_mb(server.pid)
            writes = [("POST", "/v1/records", body) for _, body in items]
            written_replies, write_latencies, write_seconds = send_all(port, key, writes, args.writers)
            written = latency_report(written_replies, write_latencies, write_seconds)
            peak = _memory_mb(server.pid)[1]
        finally:
            server.terminate()
            server.wait(timeout=60)
        given = {record: json.loads(reply)["customer_id"] for (record, _), (status, reply)
                 in zip(items, written_replies) if status == 200}
        server, port, key, restart = start_server(work / "base", None, work)
        server.terminate()
        server.wait(timeout=60)
        batch_seconds = _timed("resolve", "--previous", str(work / "base"), "--out", str(work / "after_api"))
        after = pd.read_parquet(work / "after_api" / "entities.parquet")
        after_entity = dict(zip(after["source"] + ":" + after["record_id"].astype(str), after["entity_id"]))
        kept = sum(after_entity.get(record) == customer for record, customer in given.items())
    print(json.dumps({
        "customers_served": len(earlier), "held_out": held, "compared": compared,
        "agree": agree, "agreement": round(agree / max(compared, 1), 4), "disagreements": disagreements,
        "startup_s": round(startup, 2), "rss_mb_after_start": round(memory[0]), "rss_mb_peak": round(peak),
        "memory_after_start": memory_at_start,
        "sequential": {"p50_ms": round(float(np.percentile(sequential, 50)), 2),
                       "p99_ms": round(float(np.percentile(sequential, 99)), 2)},
        **loaded,
        f"writes_{args.writers}_writers": written,
        "restart_with_log_replayed_s": round(restart, 2),
        "batch_reading_the_log_s": round(batch_seconds, 1),
        "written_records_keeping_the_api_id_in_the_batch": f"{kept}/{len(given)}"}, indent=2))


if __name__ == "__main__":
    main()
