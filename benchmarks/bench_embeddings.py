"""Embedding training cost and link-prediction quality beside the FastRP baseline.

    python benchmarks/bench_embeddings.py [--customers 170000] [--epochs 100]

Generates and resolves the data, builds the graph tables, then trains in a fresh process so
its peak RSS is the training's own (about 1M purchased + used_device edges at 170k customers).
Beside the GNN and FastRP it prints the Bayes ceiling of purchase AUC on the same split
(``purchase_ceiling.py``): the best any model learning from these purchases can do.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TRAIN = """
import json, re, sys, time
from identigraph.embeddings.pipeline import embed
from identigraph.embeddings.train import TrainingConfig
result = embed(sys.argv[1], sys.argv[2], TrainingConfig(epochs=int(sys.argv[3])))
peak = int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) / 1024
print(json.dumps({"edges": result.report.edges, "train_s": result.report.seconds, "total_s": result.seconds,
                  "peak_rss_mb": round(peak), "gnn": result.report.gnn.__dict__, "baseline": result.report.baseline.__dict__}))
"""


def main() -> None:
    from purchase_ceiling import ceiling_auc
    from synthetic_graph import synthetic_graph_tables

    from identigraph.embeddings.data import read_graph_frames

    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=170_000)
    parser.add_argument("--epochs", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        synthetic_graph_tables(work, args.customers)
        process = subprocess.run([sys.executable, "-c", TRAIN, str(work / "tables"), str(work / "embeddings"),
                                  str(args.epochs)], capture_output=True, text=True, cwd=ROOT)
        if process.returncode:
            raise SystemExit(process.stderr)
        result = json.loads(process.stdout.strip().splitlines()[-1])
        result["ceiling_purchased"] = ceiling_auc(read_graph_frames(work / "tables"))
    print(json.dumps(result))
    gnn, base = result["gnn"], result["baseline"]
    print(f"\n| customers | edges | epochs | train s | peak MB | GNN AUC purchased / used_device | GNN Recall@20 | "
          f"FastRP AUC purchased / used_device | FastRP Recall@20 | Bayes ceiling, purchased |\n"
          f"|---:|---:|---:|---:|---:|---|---:|---|---:|---:|\n"
          f"| {args.customers:,} | {result['edges']:,} | {args.epochs} | {result['train_s']} | {result['peak_rss_mb']} | "
          f"{gnn['auc']['purchased']:.4f} / {gnn['auc']['used_device']:.4f} | {gnn['recall_at_k']:.4f} | "
          f"{base['auc']['purchased']:.4f} / {base['auc']['used_device']:.4f} | {base['recall_at_k']:.4f} | "
          f"{result['ceiling_purchased']:.4f} |")


if __name__ == "__main__":
    main()
