"""Fraud-risk scoring and segmentation on the synthetic data, beside the no-graph baseline.

    python benchmarks/bench_scoring.py [--customers 100000]

Generates (seed 5, fraud rate 1%), resolves, builds the graph tables and trains the
embeddings, then in the same run scores three ways on the same folds: gradient-boosted
trees on every feature group (graph + embeddings), the same without the embeddings, and the
no-graph baseline (behaviour only). Held-out scores against the generator's truth. Then
segments with k chosen by silhouette and the stability (ARI) across seeds.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def peak_rss_mb() -> int:
    return round(int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024)


def main() -> None:
    from synthetic_graph import synthetic_graph_tables

    from identigraph.embeddings.pipeline import embed
    from identigraph.scoring.features import customer_frame
    from identigraph.scoring.pipeline import score_customers
    from identigraph.scoring.risk import RiskConfig
    from identigraph.scoring.segments import segment_customers

    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--compare-gnn", action="store_true",
                        help="also a GNN node classifier on the same folds (graph features, no embeddings)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        synthetic_graph_tables(work, args.customers)
        embedded = embed(work / "tables", work / "tables" / "embeddings")
        vectors = work / "tables" / "embeddings" / "embeddings.parquet"
        rows = {}
        started = time.perf_counter()
        frame = customer_frame(work / "tables", vectors)
        frame_seconds = time.perf_counter() - started
        for name, path in (("graph + embeddings", vectors), ("graph, no embeddings", None)):
            config = RiskConfig(compare_gnn=args.compare_gnn and path is None)
            result = score_customers(work / "tables", work / name.replace(" ", "_").replace(",", ""), path,
                                     truth_dir=work / "data" / "truth", config=config, frame=frame)
            rows[name] = {"seconds": round(result.seconds + frame_seconds, 1), "bands": result.band_counts,
                          "feature_groups": list(result.feature_groups), "group_selection": result.group_selection,
                          **{k: v for k, v in result.comparison.to_json().items()
                             if k in ("model", "baseline", "gnn", "label_ap", "kept")}}
        segments = segment_customers(work / "tables", work / "segments", vectors,
                                     risk_path=work / "graph_+_embeddings" / "risk.parquet")
    report = {"customers": args.customers, "scored": frame.graph.size, "confirmed_fraud": int(frame.known_fraud.sum()),
              "embedding_train_s": embedded.report.seconds, "scoring": rows,
              "segments": {"k": segments.k, "silhouette": segments.silhouette,
                           "stability_ari": segments.stability_ari, "seconds": segments.seconds,
                           "labels": list(segments.profiles["segment"])},
              "peak_rss_mb": peak_rss_mb()}
    print(json.dumps(report, indent=1))
    print("\n| features | ROC-AUC | average precision | precision@1% | ring recall@2% | s |\n|---|---:|---:|---:|---:|---:|")
    baseline = rows["graph + embeddings"]["baseline"]
    extra = []
    if rows["graph, no embeddings"].get("gnn"):
        extra = [("graph, GNN node classifier (no embeddings)", {"model": rows["graph, no embeddings"]["gnn"],
                                                                 "seconds": ""})]
    for name, row in (*rows.items(), *extra, ("no-graph baseline (behaviour only)", {"model": baseline, "seconds": ""})):
        m = row["model"]
        print(f"| {name} | {m['roc_auc']:.4f} | {m['average_precision']:.4f} | {m['precision_at_1pct']:.4f} | "
              f"{m['ring_recall_at_2pct']:.4f} | {row['seconds']} |")


if __name__ == "__main__":
    main()
