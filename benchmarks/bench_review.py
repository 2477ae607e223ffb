"""Clerical review: pairwise F1 against the truth before and after reviewed decisions.

    python benchmarks/bench_review.py [--records 100000] [--decisions 200]

Generates the synthetic channel data (seed 9), resolves it, exports the uncertain pairs
(most uncertain first), decides the first ``--decisions`` of them from the generator's
truth, as a perfect reviewer would, and imports them twice on copies of the run: as
constraints only, and with ``--retrain``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    import pandas as pd

    from identigraph.resolution.config import load_config
    from identigraph.resolution.linker import Linker
    from identigraph.resolution.review import apply_review, export_uncertain_pairs
    from identigraph.synthetic import GeneratorConfig, generate_dataset
    from tests.test_review import f1_against_truth, truth_decisions

    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--decisions", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        generate_dataset(GeneratorConfig(customers=int(args.records / 2.4), seed=9), work / "data")
        result = Linker(load_config(work / "data" / "linkage.toml")).run([work / "data"], work / "run")
        truth = work / "data" / "truth"
        exported = export_uncertain_pairs(work / "run", work / "pairs.csv")
        decided = truth_decisions(pd.read_csv(work / "pairs.csv", dtype=str, keep_default_na=False), truth,
                                  args.decisions)
        decided.to_csv(work / "decisions.csv", index=False)
        rows = {"before": {"f1": f1_against_truth(work / "run", truth)}}
        for name, retrain in (("constraints", False), ("constraints + retrain", True)):
            copy = work / name.replace(" ", "_").replace("+", "and")
            shutil.copytree(work / "run", copy)
            started = time.perf_counter()
            review = apply_review(copy, work / "decisions.csv", retrain=retrain)
            rows[name] = {"f1": f1_against_truth(copy, truth), "seconds": round(time.perf_counter() - started, 1),
                          "merges": review.merges, "splits": review.splits, "m_change": review.m_change}
    summary = {"records": result.records, "uncertain_pairs": exported, "decisions": len(decided),
               "decided_match": int((decided["decision"] == "match").sum()), "runs": rows}
    print(json.dumps(summary))
    print(f"\n| records | uncertain pairs | decisions (match) | F1 before | F1 constraints | F1 constraints + retrain |"
          f"\n|---:|---:|---:|---:|---:|---:|\n| {result.records:,} | {exported:,} | {len(decided)} "
          f"({summary['decided_match']}) | {rows['before']['f1']:.5f} | {rows['constraints']['f1']:.5f} | "
          f"{rows['constraints + retrain']['f1']:.5f} |")


if __name__ == "__main__":
    main()
