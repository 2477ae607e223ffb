"""Temporal link prediction (issue 18): the split, the ranking metrics, and the recommenders
on a slice of the real Online Retail II purchases."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from identigraph.embeddings.temporal import (
    EASE,
    ItemKNN,
    LightGCN,
    MostPopular,
    TemporalSplitError,
    evaluate,
    ranking_metrics,
    read_target,
    temporal_split,
    validation_split,
)
from identigraph.graph.mapping import import_graph, parse_mapping

RETAIL = Path(__file__).resolve().parents[2] / "shared" / "data" / "online_retail_ii" / "online_retail_II_2009-2010.parquet"


def test_ranking_metrics_by_hand():
    """Two starts, three ends. Start 0 had end 0 before T and gets end 2 after: end 0 is not
    ranked, end 2 comes second of the two left. Start 1 gets ends 0 and 1 after, ranked first
    and third."""
    seen = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 0]], dtype=np.float32))
    scores = np.array([[9.0, 5.0, 1.0], [3.0, 1.0, 2.0]])
    recall, ndcg = ranking_metrics(scores, np.array([0, 1]), seen, {0: np.array([2]), 1: np.array([0, 1])}, k=2)
    assert recall == pytest.approx((1.0 + 0.5) / 2)
    assert ndcg == pytest.approx(((1 / np.log2(3)) / 1 + 1 / (1 + 1 / np.log2(3))) / 2)


def test_only_new_pairs_of_known_starts_and_ends_are_tested():
    edges = pd.DataFrame({"start": ["a", "a", "b", "b", "c", "a"], "end": ["x", "y", "x", "z", "y", "z"],
                          "first_time": pd.to_datetime(["2020-01-01", "2020-03-01", "2020-01-05", "2020-03-02",
                                                        "2020-03-03", "2020-01-02"])})
    split = temporal_split(edges, pd.Timestamp("2020-02-01"))
    starts, ends = list(split.train.start_keys), list(split.train.end_keys)
    # a-y is new for a (y had no history, so it cannot be ranked: left out); b-z is new with
    # z known; c has no history.
    assert {starts[s]: [ends[e] for e in v] for s, v in split.test.items()} == {"b": ["z"]}
    assert split.pairs_before == 3 and split.train.matrix.sum() == 3
    with pytest.raises(TemporalSplitError, match="choose a --split-time between"):
        temporal_split(edges, pd.Timestamp("2030-01-01"))


@pytest.fixture(scope="module")
def retail_slice(tmp_path_factory):
    """Four months of the real log, imported as a user would, split at its last month."""
    folder = tmp_path_factory.mktemp("retail_links")
    lines = pd.read_parquet(RETAIL)
    lines = lines[(lines["InvoiceDate"] >= "2010-01-01") & (lines["InvoiceDate"] < "2010-05-01")]
    lines.to_parquet(folder / "lines.parquet", index=False)
    mapping = parse_mapping({"relationships": {"PURCHASED": {
        "file": "lines.parquet", "from": {"label": "Customer", "column": "Customer ID"},
        "to": {"label": "Product", "column": "StockCode"}, "weight": "Quantity", "time": "InvoiceDate"}}}, folder)
    import_graph(mapping, folder / "tables")
    edges = read_target(folder / "tables", "PURCHASED")
    edges = edges[edges["weight"] > 0]
    return edges, temporal_split(edges, pd.Timestamp("2010-04-01"))


def test_recommenders_on_real_purchases_beat_popularity(retail_slice):
    edges, split = retail_slice
    assert len(split.test) > 300
    popular = evaluate(MostPopular(), split)
    for model in (ItemKNN(), EASE(500.0)):
        result = evaluate(model, split)
        assert result.recall > 1.5 * popular.recall and result.ndcg > popular.ndcg, result
    gcn = evaluate(LightGCN(steps=40, dim=32), split)
    assert gcn.recall > popular.recall
    validation = validation_split(edges, split)
    assert validation.split_time < split.split_time and validation.pairs_before < split.pairs_before


def test_a_missing_relationship_type_is_named(retail_slice, tmp_path):
    with pytest.raises(TemporalSplitError, match="no relationship type 'BOUGHT'"):
        read_target(tmp_path, "BOUGHT")


def test_cli_embed_with_a_target_writes_metrics_and_embeddings(retail_slice, tmp_path):
    """`identigraph embed TABLES --target PURCHASED --split-time T` on imported tables."""
    import json

    from typer.testing import CliRunner

    from identigraph.cli.app import app

    edges, _ = retail_slice
    folder = tmp_path / "tables"
    (folder / "edges").mkdir(parents=True)
    edges.to_parquet(folder / "edges" / "PURCHASED.parquet", index=False)
    (folder / "nodes").mkdir()
    customers = pd.DataFrame({"id": [*edges["start"].astype(str).unique(), "LAPSED"]})
    customers.to_parquet(folder / "nodes" / "Customer.parquet", index=False)
    (folder / "graph.json").write_text(json.dumps({"model": {
        "nodes": {"Customer": {"key": "id"}, "Product": {"key": "id"}},
        "relationships": {"PURCHASED": {"start": "Customer", "end": "Product"}}}}))
    result = CliRunner().invoke(app, ["embed", str(folder), "--target", "PURCHASED", "--split-time", "2010-04-01",
                                      "--epochs", "5", "--dim", "16"], terminal_width=200)
    assert result.exit_code == 0, result.output
    metrics = json.loads((folder / "embeddings" / "metrics.json").read_text())
    assert set(metrics["models"]) == {"most popular", "item-kNN", "EASE", "FastRP", "LightGCN"}
    assert metrics["models"]["EASE"]["recall_at_k"] > metrics["models"]["most popular"]["recall_at_k"]
    vectors = pd.read_parquet(folder / "embeddings" / "embeddings.parquet")
    assert set(vectors["node_type"]) == {"Customer", "Product"} and len(vectors["embedding"].iloc[0]) == 16
    # Every customer of the node table has a vector, one without purchases (only cancelled
    # lines) zeros, so segments over the embeddings cover every customer.
    lapsed = vectors[vectors["node_id"] == "LAPSED"]
    assert len(lapsed) == 1 and not np.any(lapsed["embedding"].iloc[0])
    assert set(vectors.loc[vectors["node_type"] == "Customer", "node_id"]) == set(customers["id"])
    segmented = CliRunner().invoke(app, ["segment", str(folder), "--node-label", "Customer", "--k", "3"],
                                   terminal_width=200)
    assert segmented.exit_code == 0, segmented.output
    assert json.loads((folder / "segments.json").read_text())["embedding"] is not None
    assert len(vectors) == len(customers) + edges["end"].nunique()
    bad = CliRunner().invoke(app, ["embed", str(folder), "--target", "PURCHASED", "--split-time", "soon"])
    assert bad.exit_code == 1 and "is not a date or time" in bad.output
