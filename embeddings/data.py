"""Graph tables -> ``HeteroData``: node types customer, product, device; edge types
purchased and used_device with their reverses; scaled node features and their recipe.

Features (each ``log1p`` where it is a count or an amount, then standardised with the
recipe's means and standard deviations, so new data is scaled like the training data):
- customer: recency, frequency, monetary (RFM), tenure, number of channels and the share
  of its records in each channel (channel mix), basket diversity (distinct categories over
  distinct products), category affinity (the share of its orders in each category), devices
  used;
- product: category (one-hot) and price;
- device: type (one-hot), customers and sessions.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import HeteroData

NODE_TABLES = {"customer": ("Customer", "customer_id"), "product": ("Product", "product_id"),
               "device": ("Device", "device_id")}
EDGE_TABLES = {("customer", "purchased", "product"): "PURCHASED",
               ("customer", "used_device", "device"): "USED_DEVICE"}
REVERSE = {("customer", "purchased", "product"): ("product", "rev_purchased", "customer"),
           ("customer", "used_device", "device"): ("device", "rev_used_device", "customer")}


class EmbeddingInputError(ValueError):
    """The graph tables lack what the embeddings need; the message says what and where."""


@dataclass
class FeatureRecipe:
    """How raw node columns become features: kept with the model so that ``--apply`` scales
    new nodes exactly as the training nodes were."""
    columns: dict[str, list[str]] = field(default_factory=dict)  # node type -> feature names
    mean: dict[str, list[float]] = field(default_factory=dict)
    std: dict[str, list[float]] = field(default_factory=dict)
    vocabularies: dict[str, list[str]] = field(default_factory=dict)  # one-hot vocabularies
    reference_time: str = ""  # "now" for recency and tenure: the latest event in the training data

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "FeatureRecipe":
        return cls(**data)


@dataclass
class GraphFrames:
    """The node and edge tables the embeddings read, as pandas frames."""
    nodes: dict[str, pd.DataFrame]
    edges: dict[str, pd.DataFrame]
    records: pd.DataFrame | None = None  # SourceRecord nodes (for the channel mix)
    resolved_to: pd.DataFrame | None = None


def read_graph_frames(tables_dir: Path) -> GraphFrames:
    tables_dir = Path(tables_dir)
    nodes, edges = {}, {}
    for label in ("Customer", "Product", "Device", "SourceRecord"):
        path = tables_dir / "nodes" / f"{label}.parquet"
        if not path.exists():
            raise EmbeddingInputError(f"{path} is missing; build the graph tables with events first: "
                                      "`identigraph graph build RESOLVED --events DATA --out DIR`")
        nodes[label] = pd.read_parquet(path)
    for edge_type in ("PURCHASED", "USED_DEVICE", "RESOLVED_TO"):
        path = tables_dir / "edges" / f"{edge_type}.parquet"
        if not path.exists():
            raise EmbeddingInputError(f"{path} is missing; build the graph tables with orders and sessions")
        edges[edge_type] = pd.read_parquet(path)
    return GraphFrames(nodes, edges, nodes.pop("SourceRecord"), edges.pop("RESOLVED_TO"))


def _days_before(reference: pd.Timestamp, times: pd.Series) -> np.ndarray:
    return ((reference - pd.to_datetime(times)).dt.total_seconds() / 86400).to_numpy(dtype=float)


def _one_hot(values: pd.Series, vocabulary: list[str]) -> np.ndarray:
    index = {v: i for i, v in enumerate(vocabulary)}
    out = np.zeros((len(values), len(vocabulary)), dtype=np.float32)
    positions = values.map(index)
    rows = np.flatnonzero(positions.notna().to_numpy())
    out[rows, positions.iloc[rows].astype(int).to_numpy()] = 1.0
    return out


def raw_features(frames: GraphFrames, recipe: FeatureRecipe) -> dict[str, pd.DataFrame]:
    """Unscaled feature columns per node type; fills the recipe's vocabularies and reference
    time when they are empty (training), reuses them otherwise (apply)."""
    customers = frames.nodes["Customer"]
    purchased = frames.edges["PURCHASED"]
    used = frames.edges["USED_DEVICE"]
    if not recipe.reference_time:
        latest = pd.concat([pd.to_datetime(purchased["last_at"]), pd.to_datetime(used["last_seen"])]).max()
        recipe.reference_time = str(latest)
    reference = pd.Timestamp(recipe.reference_time)

    features: dict[str, pd.DataFrame] = {}
    c = pd.DataFrame(index=customers["customer_id"].to_numpy())
    products = frames.nodes["Product"].set_index("product_id")
    category = purchased["end"].map(products["category"])
    # One grouping per key and one reindex per grouped table: every groupby factorizes the
    # string ids and every reindex hashes the customer index again (40 of them took 2.6 of
    # these features' 6.5 s on 170k customers).
    bought = purchased.assign(category=category).groupby("start").agg(
        last_at=("last_at", "max"), first_at=("first_at", "min"), orders=("orders", "sum"),
        amount=("amount", "sum"), products=("end", "nunique"), categories=("category", "nunique"))
    bought = bought.reindex(c.index)
    use = used.groupby("start").agg(first_seen=("first_seen", "min"), devices=("end", "nunique")).reindex(c.index)
    first = pd.concat([bought["first_at"], use["first_seen"]], axis=1).min(axis=1)
    never = 5 * 365.0  # no order: as if the last one were five years ago
    c["recency_days"] = np.nan_to_num(_days_before(reference, bought["last_at"]), nan=never).clip(0)
    c["frequency"] = np.log1p(bought["orders"].fillna(0).to_numpy())
    c["monetary"] = np.log1p(bought["amount"].fillna(0).to_numpy())
    c["tenure_days"] = np.nan_to_num(_days_before(reference, first), nan=0.0).clip(0)
    c["basket_diversity"] = (bought["categories"] / bought["products"]).fillna(0).to_numpy()
    if not recipe.vocabularies.get("category"):
        recipe.vocabularies["category"] = sorted(products["category"].dropna().unique().tolist())
    # Category affinity: the share of the customer's orders in each category. A SAGE layer
    # could average it from the products bought, but given as input it is learned in far
    # fewer full-batch epochs.
    # Grouped sums, not crosstab: it runs a Python function per customer and value (this
    # one and the channel mix below took 11 of these features' 15 s on 170k customers).
    if len(purchased):
        orders = purchased.groupby([purchased["start"], category])["orders"].sum().unstack(fill_value=0)
        affinity = orders.div(orders.sum(axis=1), axis=0).reindex(c.index).fillna(0)
    else:
        affinity = pd.DataFrame(index=c.index)
    for name in recipe.vocabularies["category"]:
        c[f"affinity_{name}"] = affinity[name].to_numpy() if name in affinity else 0.0
    c["devices"] = np.log1p(use["devices"].fillna(0).to_numpy())
    if frames.records is not None and frames.resolved_to is not None:
        source_of = frames.records.set_index("record_key")["source"]
        channel = pd.DataFrame({"customer": frames.resolved_to["end"].to_numpy(),
                                "source": frames.resolved_to["start"].map(source_of).to_numpy()})
        if not recipe.vocabularies.get("channel"):
            recipe.vocabularies["channel"] = sorted(channel["source"].dropna().unique().tolist())
        counts = channel.groupby(["customer", "source"]).size().unstack(fill_value=0)
        mix = counts.div(counts.sum(axis=1), axis=0).reindex(c.index).fillna(0)
        for name in recipe.vocabularies["channel"]:
            c[f"channel_{name}"] = mix[name].to_numpy() if name in mix else 0.0
        c["channels"] = (counts > 0).sum(axis=1).reindex(c.index).fillna(0).to_numpy()
    features["customer"] = c

    p = pd.DataFrame(index=products.index.to_numpy())
    if not recipe.vocabularies.get("category"):
        recipe.vocabularies["category"] = sorted(products["category"].dropna().unique().tolist())
    p["log_price"] = np.log1p(pd.to_numeric(products["price"], errors="coerce").fillna(0).to_numpy())
    for name, column in zip(recipe.vocabularies["category"], _one_hot(products["category"], recipe.vocabularies["category"]).T):
        p[f"category_{name}"] = column
    features["product"] = p

    devices = frames.nodes["Device"].set_index("device_id")
    d = pd.DataFrame(index=devices.index.to_numpy())
    if not recipe.vocabularies.get("device_type"):
        recipe.vocabularies["device_type"] = sorted(devices["device_type"].dropna().unique().tolist())
    for name, column in zip(recipe.vocabularies["device_type"],
                            _one_hot(devices["device_type"], recipe.vocabularies["device_type"]).T):
        d[f"type_{name}"] = column
    d["customers"] = np.log1p(used.groupby("end")["start"].nunique().reindex(d.index).fillna(0).to_numpy())
    d["sessions"] = np.log1p(devices["sessions"].fillna(0).to_numpy(dtype=float))
    features["device"] = d
    return features


def scale(features: dict[str, pd.DataFrame], recipe: FeatureRecipe) -> dict[str, torch.Tensor]:
    """Standardise with the recipe's statistics, computing them first when it has none."""
    scaled = {}
    for node_type, frame in features.items():
        if node_type not in recipe.mean:
            recipe.columns[node_type] = list(frame.columns)
            recipe.mean[node_type] = frame.mean().astype(float).tolist()
            recipe.std[node_type] = frame.std().replace(0, 1).fillna(1).astype(float).tolist()
        frame = frame.reindex(columns=recipe.columns[node_type], fill_value=0.0)
        values = (frame.to_numpy(dtype=np.float64) - np.array(recipe.mean[node_type])) / np.array(recipe.std[node_type])
        scaled[node_type] = torch.tensor(values, dtype=torch.float32)
    return scaled


def graph_structure(frames: GraphFrames) -> HeteroData:
    """Nodes (``data[type].node_id``, ``num_nodes``) and edges with their reverses, no features."""
    data = HeteroData()
    positions = {}
    for node_type, (label, key) in NODE_TABLES.items():
        ids = frames.nodes[label][key].astype(str).to_numpy()
        data[node_type].node_id = ids
        data[node_type].num_nodes = len(ids)
        positions[node_type] = pd.Series(np.arange(len(ids)), index=ids)
    for (source, relation, target), table in EDGE_TABLES.items():
        frame = frames.edges[table]
        start = frame["start"].astype(str).map(positions[source])
        end = frame["end"].astype(str).map(positions[target])
        if start.isna().any() or end.isna().any():
            raise EmbeddingInputError(f"edges/{table}.parquet names nodes missing from the node tables; "
                                      "rebuild the graph tables")
        edge_index = torch.tensor(np.vstack([start.to_numpy(np.int64), end.to_numpy(np.int64)]))
        data[source, relation, target].edge_index = edge_index
        data[REVERSE[(source, relation, target)]].edge_index = edge_index.flip(0)
    return data


def node_features(frames: GraphFrames, recipe: FeatureRecipe | None = None) -> tuple[dict[str, torch.Tensor], FeatureRecipe]:
    """Scaled features per node type, rows in node-table order, and the recipe (fitted here
    when none is given)."""
    recipe = recipe or FeatureRecipe()
    return scale(raw_features(frames, recipe), recipe), recipe


def build_hetero_data(frames: GraphFrames, recipe: FeatureRecipe | None = None) -> tuple[HeteroData, FeatureRecipe]:
    """The graph as ``HeteroData`` (node ids kept as ``data[type].node_id``) and the recipe."""
    data = graph_structure(frames)
    features, recipe = node_features(frames, recipe)
    for node_type, x in features.items():
        data[node_type].x = x
    return data, recipe
