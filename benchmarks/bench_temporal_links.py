"""Temporal link prediction on the real Online Retail II purchases (issue 18), every
recommender of `identigraph embed TABLES --target PURCHASED --split-time T` in one run: the
order log imported as a user would (`identigraph graph import`,
docs/bring-your-own-graph.md), pairs that began before the split time to train on, new
customer-product pairs after it to rank (products with history before it).

    python benchmarks/bench_temporal_links.py [--split-time 2010-09-01] [--steps 300] [--dim 256]
    python benchmarks/bench_temporal_links.py --copies 4     # the scale run: ~1M training pairs

Prints Recall@20 and NDCG@20 of most popular, item-kNN, EASE (penalty chosen on a validation
split cut from the training period), FastRP and LightGCN, with seconds (fit and ranking).
``--copies N`` repeats every customer N times under new ids (the same purchases), to time
training on a graph N times the size. Results: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from identigraph.embeddings.temporal import (  # noqa: E402
    LIGHTGCN_DIM,
    LIGHTGCN_STEPS,
    evaluate,
    read_target,
    recommenders,
    temporal_split,
)
from identigraph.graph.mapping import import_graph, parse_mapping  # noqa: E402

RETAIL = ROOT.parent / "shared" / "data" / "online_retail_ii" / "online_retail_II_2009-2010.parquet"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--split-time", default="2010-09-01")
    parser.add_argument("--steps", type=int, default=LIGHTGCN_STEPS)
    parser.add_argument("--dim", type=int, default=LIGHTGCN_DIM)
    parser.add_argument("--copies", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        mapping = parse_mapping({
            "nodes": {"Customer": {"id": "customer_id"}, "Product": {"id": "product_id"}},
            "relationships": {"PURCHASED": {"file": str(RETAIL), "from": {"label": "Customer", "column": "Customer ID"},
                                            "to": {"label": "Product", "column": "StockCode"},
                                            "weight": "Quantity", "time": "InvoiceDate"}}}, Path(tmp))
        import_graph(mapping, Path(tmp) / "tables")
        edges = read_target(Path(tmp) / "tables", "PURCHASED")
    # A pair whose quantities net to nothing (bought and cancelled) is no purchase.
    edges = edges[edges["weight"] > 0]
    if args.copies > 1:
        edges = pd.concat([edges.assign(start=edges["start"] + f"~{copy}") for copy in range(args.copies)],
                          ignore_index=True)
    split = temporal_split(edges, pd.Timestamp(args.split_time))
    print(f"train pairs {split.pairs_before:,}; new pairs after {args.split_time}: {split.pairs_after:,} "
          f"of {len(split.test):,} customers", flush=True)
    rows = []
    for model, settings in recommenders(edges, split, args.steps, args.dim):
        rows.append(evaluate(model, split, settings=settings))
        print(f"{model.name}: {rows[-1].seconds:.1f} s", flush=True)
    print("| model | Recall@20 | NDCG@20 | s | settings |")
    print("|---|---:|---:|---:|---|")
    for row in rows:
        print(f"| {row.name} | {row.recall:.4f} | {row.ndcg:.4f} | {row.seconds:.1f} | {row.settings} |")


if __name__ == "__main__":
    main()
