"""Embeddings: shapes, determinism, inductive apply, planted structure, and the write-back
and vector query on the real Neo4j."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from identigraph.cli.app import app
from identigraph.embeddings.data import GraphFrames, build_hetero_data, read_graph_frames
from identigraph.embeddings.pipeline import apply, embed
from identigraph.embeddings.train import TrainingConfig, neighbour_sampling_available, train_and_evaluate
from tests.conftest import SMALL_EMBEDDINGS as SMALL

runner = CliRunner()


def _vectors(path: Path, node_type: str) -> pd.Series:
    frame = pd.read_parquet(path / "embeddings.parquet")
    frame = frame[frame["node_type"] == node_type]
    return pd.Series(list(np.stack(frame["embedding"].to_numpy())), index=frame["node_id"].to_numpy())


def test_one_vector_of_the_asked_size_per_node(embedded, graph_tables):
    frame = pd.read_parquet(embedded / "embeddings.parquet")
    for node_type, (label, key) in {"customer": ("Customer", "customer_id"), "product": ("Product", "product_id"),
                                    "device": ("Device", "device_id")}.items():
        ids = pd.read_parquet(graph_tables / "nodes" / f"{label}.parquet")[key]
        rows = frame[frame["node_type"] == node_type]
        assert sorted(rows["node_id"]) == sorted(ids)
    assert {len(v) for v in frame["embedding"]} == {16}
    assert np.isfinite(np.stack(frame["embedding"].to_numpy())).all()
    metrics = json.loads((embedded / "metrics.json").read_text())
    assert set(metrics["gnn"]["auc"]) == {"purchased", "used_device"}
    assert metrics["loss"][-1] < metrics["loss"][0]


def test_the_same_seed_gives_the_same_metrics_and_vectors(embedded, graph_tables, tmp_path):
    embed(graph_tables, tmp_path, SMALL)
    assert json.loads((tmp_path / "metrics.json").read_text())["gnn"] == \
        json.loads((embedded / "metrics.json").read_text())["gnn"]
    first, again = _vectors(embedded, "customer"), _vectors(tmp_path, "customer")
    assert np.allclose(np.stack(first.to_numpy()), np.stack(again.reindex(first.index).to_numpy()), atol=1e-5)


def _without_customers(frames: GraphFrames, held_out: set[str]) -> GraphFrames:
    nodes = dict(frames.nodes)
    nodes["Customer"] = nodes["Customer"][~nodes["Customer"]["customer_id"].isin(held_out)]
    edges = {name: frame[~frame["start"].isin(held_out)] for name, frame in frames.edges.items()}
    resolved = frames.resolved_to[~frames.resolved_to["end"].isin(held_out)]
    return GraphFrames(nodes, edges, frames.records, resolved)


def test_new_customers_are_embedded_without_retraining(graph_tables, tmp_path):
    frames = read_graph_frames(graph_tables)
    purchased = frames.edges["PURCHASED"]
    buyers = purchased.groupby("start").size()
    held_out = set(buyers[buyers >= 3].sample(frac=0.15, random_state=1).index)
    embed(graph_tables, tmp_path / "trained", TrainingConfig(dim=16, hidden=16, epochs=80, seed=3, batching="full"),
          frames=_without_customers(frames, held_out))
    apply(graph_tables, tmp_path / "trained" / "model.pt", tmp_path / "applied")
    customers, products = _vectors(tmp_path / "applied", "customer"), _vectors(tmp_path / "applied", "product")
    assert held_out <= set(customers.index)
    product_matrix = np.stack(products.to_numpy())
    position = {p: i for i, p in enumerate(products.index)}
    # The products a new customer bought rank above the catalogue's median for them.
    percentiles = []
    for customer in held_out:
        scores = product_matrix @ customers[customer]
        rank = (-scores).argsort().argsort() / len(scores)
        bought = purchased.loc[purchased["start"] == customer, "end"].map(position)
        percentiles.extend(rank[bought.to_numpy()])
    assert np.mean(percentiles) < 0.4, np.mean(percentiles)


def planted_frames(seed: int = 0) -> GraphFrames:
    """Two communities: each buys from its own 20 products and uses its own 10 devices."""
    rng = np.random.default_rng(seed)
    customers = [f"C{i}" for i in range(400)]
    products = pd.DataFrame({"product_id": [f"P{i}" for i in range(40)], "category": ["x"] * 40,
                             "price": rng.uniform(5, 50, 40)})
    devices = pd.DataFrame({"device_id": [f"D{i}" for i in range(20)], "device_type": ["ios", "android"] * 10,
                            "sessions": 10})
    purchases, uses = [], []
    when = pd.Timestamp("2026-01-01")
    for i, customer in enumerate(customers):
        group = i % 2
        for product in rng.choice(20, 6, replace=False) + 20 * group:
            purchases.append((customer, f"P{product}", 1, 10.0, when, when))
        for device in rng.choice(10, 2, replace=False) + 10 * group:
            uses.append((customer, f"D{device}", 3, when, when))
    purchased = pd.DataFrame(purchases, columns=["start", "end", "orders", "amount", "first_at", "last_at"])
    used = pd.DataFrame(uses, columns=["start", "end", "sessions", "first_seen", "last_seen"])
    return GraphFrames({"Customer": pd.DataFrame({"customer_id": customers}), "Product": products, "Device": devices},
                       {"PURCHASED": purchased, "USED_DEVICE": used})


def _assert_planted_structure_recovered(frames: GraphFrames, config: TrainingConfig):
    model, report, recipe = train_and_evaluate(frames, config)
    data, _ = build_hetero_data(frames, recipe)
    with torch.no_grad():
        z = model(data.x_dict, data.edge_index_dict)
    group = torch.arange(400) % 2
    customers = torch.nn.functional.normalize(z["customer"], dim=1)
    similarity = customers @ customers.T
    similarity.fill_diagonal_(-2)
    nearest = similarity.argmax(dim=1)
    assert (group[nearest] == group).float().mean() > 0.95
    # Every customer scores its own community's products above the other community's.
    scores = z["customer"] @ z["product"].T
    own = torch.where(group[:, None] == 0, scores[:, :20].mean(1, keepdim=True), scores[:, 20:].mean(1, keepdim=True))
    other = torch.where(group[:, None] == 0, scores[:, 20:].mean(1, keepdim=True), scores[:, :20].mean(1, keepdim=True))
    assert (own > other).float().mean() > 0.95
    # Held-out edges: within a community every product is as likely, so a negative from the
    # own community is indistinguishable; 0.75 is what knowing the communities is worth.
    assert report.gnn.auc["purchased"] > 0.7 and report.gnn.recall_at_k > 0.95
    return report


def test_planted_communities_are_recovered():
    report = _assert_planted_structure_recovered(planted_frames(), TrainingConfig(dim=16, hidden=16, seed=1,
                                                                                  batching="full"))
    assert not report.mini_batches and len(report.loss) == 100


def test_auto_batching_follows_the_installed_neighbour_sampler(graph_tables, tmp_path):
    assert TrainingConfig().mini_batches == neighbour_sampling_available()
    assert not TrainingConfig(batching="full").mini_batches
    with pytest.raises(ValueError, match="batching must be one of"):
        TrainingConfig(batching="sampled")
    if neighbour_sampling_available():
        assert TrainingConfig(batching="neighbour").mini_batches
    else:
        # Asked for explicitly without pyg-lib or torch-sparse: one line that says what to install.
        with pytest.raises(ValueError, match="pyg-lib or torch-sparse"):
            TrainingConfig(batching="neighbour")
        result = runner.invoke(app, ["embed", str(graph_tables), "--out", str(tmp_path), "--batching", "neighbour"])
        assert result.exit_code == 1 and "pyg-lib or torch-sparse" in result.output
        assert "Traceback" not in result.output and not (tmp_path / "model.pt").exists()


@pytest.mark.skipif(not neighbour_sampling_available(),
                    reason="LinkNeighborLoader needs pyg-lib or torch-sparse, which have no PyPI wheels")
def test_mini_batches_recover_planted_communities_reproducibly():
    config = TrainingConfig(dim=16, hidden=16, seed=1, batching="neighbour", batch_size=64, mini_batch_epochs=10)
    report = _assert_planted_structure_recovered(planted_frames(), config)
    assert report.mini_batches and len(report.loss) == 10
    _, again, _ = train_and_evaluate(planted_frames(), config)
    assert again.gnn == report.gnn and again.loss == report.loss


@pytest.mark.neo4j
def test_write_back_and_similar_customers_share_more_than_random_ones(embedded, graph_tables, neo4j_db,
                                                                       neo4j_settings):
    from identigraph.embeddings.neo4j_io import read_graph_frames_from_neo4j
    from identigraph.graph.cookbook import run_cookbook_query
    from identigraph.graph.load import load_graph

    database = neo4j_settings.database
    load_graph(graph_tables, neo4j_db, database, replace=True)
    env = {"NEO4J_PASSWORD": neo4j_settings.password, "NEO4J_DATABASE": database}
    result = runner.invoke(app, ["embed", str(graph_tables), "--out", str(embedded), "--apply",
                                 str(embedded / "model.pt"), "--to-neo4j", "--neo4j-uri", neo4j_settings.uri], env=env)
    assert result.exit_code == 0, result.output
    records, _, _ = neo4j_db.execute_query(
        "MATCH (c:Customer) RETURN count(c.embedding) AS with_vector, count(c) AS customers", database_=database)
    assert records[0]["with_vector"] == records[0]["customers"] > 0

    # What two customers share: the categories they buy in (cosine of their per-category
    # orders; exact products rarely repeat across 2,100) and the devices they use.
    purchased = pd.read_parquet(graph_tables / "edges" / "PURCHASED.parquet")
    category = purchased["end"].map(pd.read_parquet(graph_tables / "nodes" / "Product.parquet")
                                    .set_index("product_id")["category"])
    baskets = purchased.groupby(["start", category])["orders"].sum().unstack(fill_value=0)
    baskets = baskets.div(np.sqrt((baskets ** 2).sum(axis=1)), axis=0)
    devices = pd.read_parquet(graph_tables / "edges" / "USED_DEVICE.parquet").groupby("start")["end"].agg(frozenset)

    def shared(a: str, b: str) -> float:
        categories = float(baskets.loc[a] @ baskets.loc[b]) if a in baskets.index and b in baskets.index else 0.0
        same_device = bool(devices.get(a, frozenset()) & devices.get(b, frozenset()))
        return categories + same_device

    rng = np.random.default_rng(0)
    customers = baskets.index.to_numpy()
    near, random = [], []
    for customer in rng.choice(customers, 40, replace=False):
        _, rows = run_cookbook_query(neo4j_db, "similar_customers", {"customer_id": customer, "k": "5"}, database)
        assert len(rows) == 5 and all(r["customer_id"] != customer for r in rows)
        near.extend(shared(customer, r["customer_id"]) for r in rows)
        random.extend(shared(customer, other) for other in rng.choice(customers, 5))
    assert np.mean(near) > 1.5 * np.mean(random), (np.mean(near), np.mean(random))

    # The graph read back from Neo4j gives the same training data as the tables.
    from_neo4j, _ = build_hetero_data(read_graph_frames_from_neo4j(neo4j_db, database))
    from_tables, _ = build_hetero_data(read_graph_frames(graph_tables))
    for node_type in ("customer", "product", "device"):
        assert sorted(from_neo4j[node_type].node_id) == sorted(from_tables[node_type].node_id)
    for edge_type in from_tables.edge_types:
        assert from_neo4j[edge_type].edge_index.size(1) == from_tables[edge_type].edge_index.size(1)
