"""``identigraph embed``: graph tables -> trained encoder, metrics beside the baseline,
``embeddings.parquet`` and a checkpoint; ``apply`` embeds a (grown) graph with a saved
checkpoint without retraining.

Artifacts in the output folder:
- ``embeddings.parquet``: ``node_type`` (customer, product, device), ``node_id`` (the graph
  key: customer_id, product_id, device_id), ``embedding`` (list<float32>, ``dim`` long).
- ``model.pt``: encoder weights, the training config, the feature recipe and the product
  catalogue the learned product vectors belong to.
- ``metrics.json``: held-out ROC-AUC per relation and Recall@k of purchases for the GNN and
  the FastRP baseline, training seconds, loss curve.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from identigraph.embeddings.data import FeatureRecipe, GraphFrames, build_hetero_data, read_graph_frames
from identigraph.embeddings.model import HeteroLinkModel
from identigraph.embeddings.train import TrainingConfig, TrainingReport, deterministic, link_targets, train_and_evaluate


@dataclass
class EmbedResult:
    out_dir: Path
    nodes: dict[str, int]
    report: TrainingReport | None
    seconds: float


def _embeddings_table(z: dict[str, torch.Tensor], data) -> pa.Table:
    types, ids, vectors = [], [], []
    for node_type, values in z.items():
        types.append(np.full(values.size(0), node_type, dtype=object))
        ids.append(np.asarray(data[node_type].node_id, dtype=object))
        vectors.append(values.detach().numpy().astype(np.float32))
    dim = vectors[0].shape[1]
    flat = pa.array(np.concatenate(vectors).ravel(), type=pa.float32())
    return pa.table({"node_type": pa.array(np.concatenate(types), pa.string()),
                     "node_id": pa.array(np.concatenate(ids), pa.string()),
                     "embedding": pa.FixedSizeListArray.from_arrays(flat, dim).cast(pa.list_(pa.float32()))})


def _tables(tables_dir: Path | None) -> Path:
    if tables_dir is None:
        raise ValueError("give the graph tables folder, or the graph read from Neo4j")
    return tables_dir


def embed(tables_dir: Path | None, out_dir: Path, config: TrainingConfig = TrainingConfig(), progress=None,
          frames: GraphFrames | None = None) -> EmbedResult:
    """Train on the graph tables (or ``frames`` read elsewhere, e.g. from Neo4j) and write the artifacts."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = frames or read_graph_frames(_tables(tables_dir))
    model, report, recipe = train_and_evaluate(frames, config, progress)
    data, _ = build_hetero_data(frames, recipe)  # every edge now, scaled as in training
    with torch.no_grad(), deterministic():
        z = model(data.x_dict, data.edge_index_dict)  # every edge: the final embeddings see the whole graph
    pq.write_table(_embeddings_table(z, data), out_dir / "embeddings.parquet")
    torch.save({"state_dict": model.state_dict(), "config": asdict(config), "recipe": recipe.to_json(),
                "metadata": data.metadata(), "input_dims": {t: data[t].num_features for t in data.node_types},
                "catalogue": {"product": list(data["product"].node_id)}}, out_dir / "model.pt")
    (out_dir / "metrics.json").write_text(json.dumps(report.to_json(), indent=2))
    return EmbedResult(out_dir, {t: data[t].num_nodes for t in data.node_types}, report,
                       round(time.perf_counter() - started, 2))


def load_model(checkpoint: Path) -> tuple[HeteroLinkModel, dict]:
    saved = torch.load(checkpoint, weights_only=False)
    # How it was trained does not matter to applying it, and "neighbour" would refuse to load
    # on a machine without the sampler's libraries.
    config = TrainingConfig(**{**saved["config"], "batching": "full"})
    metadata = (saved["metadata"][0], [tuple(e) for e in saved["metadata"][1]])
    model = HeteroLinkModel(metadata, saved["input_dims"], hidden=config.hidden, out=config.dim, layers=config.layers,
                            catalogue_sizes={t: len(ids) for t, ids in saved["catalogue"].items()},
                            bias_types=link_targets(config))
    model.load_state_dict(saved["state_dict"])
    model.eval()
    return model, saved


def apply(tables_dir: Path | None, checkpoint: Path, out_dir: Path, frames: GraphFrames | None = None) -> EmbedResult:
    """Embed every node of the tables with a trained checkpoint: new customers and devices
    from their features and edges, products by their learned vectors where known."""
    started = time.perf_counter()
    model, saved = load_model(checkpoint)
    frames = frames or read_graph_frames(_tables(tables_dir))
    data, _ = build_hetero_data(frames, FeatureRecipe.from_json(saved["recipe"]))
    catalogue_index = {}
    for node_type, ids in saved["catalogue"].items():
        position = pd.Series(np.arange(len(ids)), index=ids)
        catalogue_index[node_type] = torch.tensor(
            pd.Series(data[node_type].node_id).map(position).fillna(-1).to_numpy(np.int64))
    with torch.no_grad(), deterministic():
        z = model(data.x_dict, data.edge_index_dict, catalogue_index)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(_embeddings_table(z, data), out_dir / "embeddings.parquet")
    return EmbedResult(out_dir, {t: data[t].num_nodes for t in data.node_types}, None,
                       round(time.perf_counter() - started, 2))
