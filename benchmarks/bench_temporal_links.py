"""Temporal link prediction on the real Online Retail II purchases (issue 18), every
recommender in one run: the order log imported as a user would (`identigraph graph import`,
docs/bring-your-own-graph.md), pairs that began before the split time to train on, new
customer-product pairs after it to rank (products with history before it).

    python benchmarks/bench_temporal_links.py [--split-time 2010-09-01] [--epochs 60]

Prints Recall@20 and NDCG@20 of most popular, item-kNN, EASE (penalty chosen on a validation
split cut from the training period) and LightGCN, with seconds. Results: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from embeddings.temporal import (EASE, EASE_PENALTIES, ItemKNN, LightGCN, MostPopular,  # noqa: E402
                                 choose_on_validation, evaluate, read_target, temporal_split, validation_split)
from graph.mapping import import_graph, parse_mapping  # noqa: E402

RETAIL = ROOT.parent / "shared" / "data" / "online_retail_ii" / "online_retail_II_2009-2010.parquet"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--split-time", default="2010-09-01")
    parser.add_argument("--epochs", type=int, default=60)
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
    split = temporal_split(edges, pd.Timestamp(args.split_time))
    validation = validation_split(edges, split)
    print(f"train pairs {split.pairs_before:,}; new pairs after {args.split_time}: {split.pairs_after:,} "
          f"of {len(split.test):,} customers", flush=True)
    ease = choose_on_validation([EASE(penalty) for penalty in EASE_PENALTIES], validation)
    rows = [evaluate(model, split, settings=settings) for model, settings in (
        (MostPopular(), {}), (ItemKNN(), {"neighbours": 100}), (ease, {"penalty": ease.penalty}),
        (LightGCN(epochs=args.epochs), {"epochs": args.epochs, "layers": 3, "dim": 64}))]
    print("| model | Recall@20 | NDCG@20 | s | settings |")
    print("|---|---:|---:|---:|---|")
    for row in rows:
        print(f"| {row.name} | {row.recall:.4f} | {row.ndcg:.4f} | {row.seconds:.1f} | {row.settings} |")


if __name__ == "__main__":
    main()
