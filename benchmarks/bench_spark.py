"""The Spark engine beside the embedded one, in one run: FEBRL3, FEBRL4 and the synthetic
channel data at about 100k, 300k and 1M records.

    python benchmarks/bench_spark.py [--sizes 100000 300000 1000000] [--master local[2]]

Each engine resolves each set in a fresh process with the set's linkage.toml. Reported per
set: wall time and peak memory of each engine (the whole process tree's PSS: for Spark the
Python driver, the JVM and its Python workers), pairwise F1 of each against the truth, the
agreement of the Spark engine's customers with the embedded engine's (pairwise precision,
recall and F1 of one against the other, and the share of records with the very same
customer id), and Spark's seconds and shuffle bytes per step (from its run.json).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_real import synthetic  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

RUN = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from identigraph.resolution.jobs import resolve_files
spec = json.loads(sys.argv[1])
started = time.perf_counter()
result = resolve_files([Path(f) for f in spec["files"]], Path(spec["out"]), Path(spec["config"]),
                       engine=spec["engine"], spark_master=spec.get("master"))
print(json.dumps({{"seconds": time.perf_counter() - started, "records": result.records,
                  "entities": result.entities, "candidate_pairs": result.candidate_pairs}}))
"""


def tree_peak_of(spec: dict) -> dict:
    """Run one engine in a fresh process; its JSON line plus the peak memory of its process
    tree, sampled every 0.5 s as the sum of each process's proportional set size (PSS):
    Spark's Python workers are forks that share most of their pages, which a sum of RSS
    would count once per worker."""
    import psutil

    process = subprocess.Popen([sys.executable, "-c", RUN.format(root=str(ROOT)), json.dumps(spec)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def sample() -> None:
        root = psutil.Process(process.pid)
        while process.poll() is None:
            try:
                total = sum(p.memory_full_info().pss for p in [root, *root.children(recursive=True)])
                peak[0] = max(peak[0], total)
            except psutil.Error:
                pass
            time.sleep(0.5)

    watcher = threading.Thread(target=sample, daemon=True)
    started = time.perf_counter()
    watcher.start()
    out, err = process.communicate()
    watcher.join()
    if process.returncode != 0:
        return {"error": (err.strip().splitlines() or ["failed"])[-1], "wall_s": time.perf_counter() - started}
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_mb"] = peak[0] / 2**20
    return result


def pairwise(predicted, truth) -> dict:
    from identigraph.resolution.evaluation import evaluate_clusters

    metrics = evaluate_clusters(predicted, truth)
    return {"p": metrics.pairwise_precision, "r": metrics.pairwise_recall, "f1": metrics.pairwise_f1}


def compare(name: str, files: list[Path], config: Path, truth: Path, work: Path, master: str) -> dict:
    import pandas as pd

    row: dict = {"data": name}
    for engine in ("embedded", "spark"):
        out = work / f"{name}_{engine}".replace(" ", "_").replace(",", "")
        row[engine] = tree_peak_of({"files": [str(f) for f in files], "config": str(config), "out": str(out),
                                    "engine": engine, "master": master if engine == "spark" else None})
        row[engine]["out"] = out
        print(json.dumps({"data": name, "engine": engine, **{k: v for k, v in row[engine].items() if k != "out"}}),
              flush=True)
    if any("error" in row[e] for e in ("embedded", "spark")):
        return row
    truth_frame = pd.read_parquet(truth)
    key = truth_frame["source"].astype(str) + ":" + truth_frame["record_id"].astype(str)
    truth_of = pd.Series(truth_frame["entity"].astype(str).to_numpy(), index=key.to_numpy())
    entities = {}
    for engine in ("embedded", "spark"):
        frame = pd.read_parquet(row[engine]["out"] / "entities.parquet")
        frame.index = (frame["source"].astype(str) + ":" + frame["record_id"].astype(str)).to_numpy()
        entities[engine] = frame["entity_id"]
        known = frame.index.intersection(truth_of.index)
        row[engine]["truth"] = pairwise(frame.loc[known, "entity_id"], truth_of.loc[known])
    both = entities["embedded"].index.intersection(entities["spark"].index)
    row["agreement"] = pairwise(entities["spark"].loc[both], entities["embedded"].loc[both])
    row["same_id"] = float((entities["spark"].loc[both] == entities["embedded"].loc[both]).mean())
    run = json.loads((row["spark"]["out"] / "run.json").read_text())
    row["spark_steps"] = {step: {"seconds": seconds, **run["spark"]["shuffle_bytes_by_step"].get(step, {})}
                          for step, seconds in run["seconds"].items()}
    print(json.dumps({"data": name, "agreement": row["agreement"], "same_id": row["same_id"],
                      "spark_steps": row["spark_steps"]}), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--no-febrl", action="store_true")
    args = parser.parse_args()
    from identigraph.resolution.datasets import febrl

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.no_febrl:
            for which in (3, 4):
                data = febrl(which, work / "data")
                rows.append(compare(data.name, data.files, data.config, data.truth, work, args.master))
        for records in args.sizes:
            data = synthetic(records, work)
            rows.append(compare(data.name, data.files, data.config, data.truth, work, args.master))
    print()
    print(f"| data | records | embedded s | Spark ({args.master}) s | embedded peak MB | Spark peak MB (driver, JVM, "
          "workers; PSS) | embedded F1 | Spark F1 | agreement P / R / F1 | same customer id |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for row in rows:
        e, s = row["embedded"], row["spark"]
        if "error" in e or "error" in s:
            print(f"| {row['data']} | | {e.get('error', '')} | {s.get('error', '')} | | | | | | |")
            continue
        a = row["agreement"]
        print(f"| {row['data']} | {e['records']:,} | {e['seconds']:.1f} | {s['seconds']:.1f} | {e['peak_mb']:,.0f} | "
              f"{s['peak_mb']:,.0f} | {e['truth']['f1']:.4f} | {s['truth']['f1']:.4f} | "
              f"{a['p']:.4f} / {a['r']:.4f} / {a['f1']:.4f} | {row['same_id']:.4f} |")
    print()
    print("Spark per step (seconds; shuffle written / read, MB):")
    for row in rows:
        if "spark_steps" not in row:
            continue
        cells = ", ".join(f"{step}: {v['seconds']:.1f} s ({v.get('shuffle_write', 0) / 2**20:.0f}/"
                          f"{v.get('shuffle_read', 0) / 2**20:.0f} MB)" for step, v in row["spark_steps"].items())
        print(f"- {row['data']}: {cells}")


if __name__ == "__main__":
    main()
