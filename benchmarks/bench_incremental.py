"""Incremental linking: a batch of new records against a million resolved ones.

    python benchmarks/bench_incremental.py [--records 1000000] [--batch 10000]

Generates the synthetic channel data (seed 9, about 2.4 records per customer), holds out
``--batch`` records chosen by a hash of their row (across every channel), resolves the rest
in full, then links the batch with ``Linker.run_incremental`` in a fresh process (its wall
time and peak RSS are its own), once as it runs by default and once with ``fast=True``
(``--fast``). Beside them, in the same run: a full resolution of all records with the same
saved model, and each mode's agreement with it (identical customers, and pairwise precision
and recall of one partition against the other).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RUN = """
import json, re, sys, time
from pathlib import Path
from identigraph.resolution.config import load_config
from identigraph.resolution.linker import Linker
from identigraph.resolution.model import FellegiSunterModel
spec = json.loads(sys.argv[1])
config = load_config(Path(spec["config"]))
started = time.perf_counter()
if spec["kind"] == "incremental":
    result = Linker(config).run_incremental([Path(spec["inputs"])], Path(spec["previous"]), Path(spec["out"]),
                                            fast=spec["fast"])
else:
    model = FellegiSunterModel.from_json(json.loads(Path(spec["model"]).read_text())) if spec.get("model") else None
    result = Linker(config).run([Path(spec["inputs"])], Path(spec["out"]), model=model)
seconds = time.perf_counter() - started
peak = int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) / 1024
print(json.dumps({"seconds": round(seconds, 2), "peak_mb": round(peak), "records": result.records,
                  "steps": result.seconds, "incremental": result.incremental}))
"""
CHANNELS = ("crm.csv", "web_accounts.jsonl", "app_users.parquet", "store_loyalty.csv", "callcenter.csv")


def _run(spec: dict) -> dict:
    process = subprocess.run([sys.executable, "-c", RUN, json.dumps(spec)], capture_output=True, text=True, cwd=ROOT)
    if process.returncode:
        raise SystemExit(process.stderr)
    return json.loads(process.stdout.strip().splitlines()[-1])


def split_batch(data: Path, existing: Path, batch: Path, everything: Path, batch_records: int) -> int:
    """Writes the channel files three ways; returns the number of records in the batch."""
    from identigraph.resolution.io import read_table, write_table

    frames = {name: read_table(data / name) for name in CHANNELS}
    total = sum(len(f) for f in frames.values())
    share = batch_records / total
    held = 0
    for folder in (existing, batch, everything):
        folder.mkdir(parents=True)
        (folder / "linkage.toml").write_text((data / "linkage.toml").read_text())
    for name, frame in frames.items():
        bucket = frame.iloc[:, 0].astype(str).map(lambda v: int.from_bytes(hashlib.md5(v.encode()).digest()[:4], "big"))
        in_batch = bucket < share * 2**32
        held += int(in_batch.sum())
        for folder, part in ((existing, frame[~in_batch]), (batch, frame[in_batch]), (everything, frame)):
            write_table(part, folder / name)
    return held


def main() -> None:
    import pandas as pd

    from identigraph.resolution.evaluation import evaluate_clusters
    from identigraph.synthetic import GeneratorConfig, generate_dataset

    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        generate_dataset(GeneratorConfig(customers=int(args.records / 2.4), seed=9), work / "data")
        held = split_batch(work / "data", work / "existing", work / "batch", work / "all", args.batch)
        config = str(work / "data" / "linkage.toml")
        base = _run({"kind": "full", "config": config, "inputs": str(work / "existing"), "out": str(work / "base")})
        modes = {}
        for mode in ("incremental", "fast"):
            modes[mode] = _run({"kind": "incremental", "config": config, "inputs": str(work / "batch"),
                                "previous": str(work / "base"), "out": str(work / mode), "fast": mode == "fast"})
        full = _run({"kind": "full", "config": config, "inputs": str(work / "all"), "out": str(work / "full"),
                     "model": str(work / "base" / "model.json")})
        keyed, customers = {}, {}
        for name in ("incremental", "fast", "full"):
            entities = pd.read_parquet(work / name / "entities.parquet")
            keyed[name] = entities.set_index(entities["source"] + ":" + entities["record_id"])["entity_id"]
            customers[name] = {frozenset(keys) for keys in keyed[name].groupby(keyed[name]).groups.values()}
        for mode in modes:
            agreement = evaluate_clusters(keyed[mode], keyed["full"].reindex(keyed[mode].index))
            modes[mode]["agreement_precision"] = agreement.pairwise_precision
            modes[mode]["agreement_recall"] = agreement.pairwise_recall
            modes[mode]["customers_not_in_full_run"] = len(customers[mode] - customers["full"])
    result = {"existing_records": base["records"], "batch_records": held, "base_full_s": base["seconds"],
              **modes, "full_with_saved_model": full}
    print(json.dumps(result))
    print("\n| mode | existing records | batch | s | peak MB | full rerun s (saved model) | full peak MB | speed-up | "
          "customers unlike the full run's | pairwise agreement P / R |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for mode, run in modes.items():
        print(f"| {'default' if mode == 'incremental' else '--fast'} | {base['records']:,} | {held:,} | "
              f"{run['seconds']} | {run['peak_mb']} | {full['seconds']} | {full['peak_mb']} | "
              f"{full['seconds'] / run['seconds']:.1f}x | {run['customers_not_in_full_run']:,} | "
              f"{run['agreement_precision']:.4f} / {run['agreement_recall']:.4f} |")
    for mode, run in modes.items():
        print(f"{mode} steps:", json.dumps(run["steps"]), json.dumps(run["incremental"]))


if __name__ == "__main__":
    main()
