"""Segments of any node label of any tables (``identigraph segment TABLES --node-label LABEL``),
built or imported: k-means on what the graph says about each node, k by silhouette, named
after what sets each segment apart.

Clustering input, each block standardised:
- the label's own feature columns (``graph.json``), reduced by PCA to at most
  ``SegmentConfig.own_components`` when there are more;
- per relationship type touching the label, the node's degree and its neighbours' mean
  degree, and where the relationship has them its events, summed weight, days since the last
  and the first event (``scoring.node_risk.node_graph``'s ``structure``), log-scaled;
- the label's embeddings (``embeddings.parquet`` rows whose ``node_type`` is the label, from
  ``identigraph embed``), reduced by PCA and scaled as for customers.

Artifacts (in the tables folder or ``out``), the customer segmenter's names with ``id`` for
the key:
- ``segments.parquet``: ``id``, ``segment_id`` (``S01``… by size), ``segment`` (name);
- ``segment_profiles.parquet``: ``segment_id``, ``segment``, ``nodes``, ``share``,
  ``distinctive`` (the columns furthest from the population, in standard deviations),
  ``top_neighbours`` (per relationship type, the neighbours most over-represented among the
  segment's, with their lift);
- ``segments.json``: label, k, silhouette per k tried, stability (ARI across seeds), seconds.
"""
from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from identigraph.graph.model import model_of
from identigraph.scoring.node_risk import node_graph, read_label_embeddings
from identigraph.scoring.segments import SegmentConfig, choose_k, stable_kmeans

PROFILE_COLUMNS = ["segment_id", "segment", "nodes", "share", "distinctive", "top_neighbours"]
# Columns named in a segment's name: those at least this many standard deviations from the
# population mean, the furthest two.
NAMED_DEVIATION = 0.5


@dataclass
class NodeSegmentResult:
    path: Path
    label: str
    k: int
    silhouette: dict[int, float]
    stability_ari: float
    profiles: pd.DataFrame
    seconds: float


def _standardised(values: np.ndarray) -> np.ndarray:
    """Columns to mean 0, sd 1; a node without a value (no such edge) takes the column's median."""
    if values.shape[1] == 0:
        return values.astype(np.float64)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column's median
        medians = np.nanmedian(values, axis=0)
    values = np.where(np.isnan(values), medians, values)
    return StandardScaler().fit_transform(np.nan_to_num(values))


def _signed_log(values: np.ndarray) -> np.ndarray:
    """Counts, sums and day spans are heavy-tailed; a few whales would be one segment each."""
    return np.sign(values) * np.log1p(np.abs(values))


def segment_nodes(tables_dir: Path, label: str, out_dir: Path | None = None, embeddings_path: Path | None = None,
                  config: SegmentConfig = SegmentConfig()) -> NodeSegmentResult:
    started = time.perf_counter()
    tables_dir = Path(tables_dir)
    out_dir = Path(out_dir or tables_dir)
    graph = node_graph(tables_dir, label)
    if len(graph.keys) < 3:
        raise ValueError(f"{label} has {len(graph.keys)} nodes; segments need at least 3")
    # What each segment is told apart by, in standard deviations: own columns as they are, the
    # structure's counts and spans log-scaled as in the clustering.
    described = np.column_stack([_standardised(graph.own), _standardised(_signed_log(graph.structure))])
    names = graph.own_names + graph.structure_names
    blocks = []
    if graph.own.shape[1]:
        own = _standardised(graph.own)
        if own.shape[1] > config.own_components:
            own = StandardScaler().fit_transform(
                PCA(n_components=config.own_components, random_state=config.seed).fit_transform(own))
        blocks.append(own)
    if graph.structure.shape[1]:
        blocks.append(_standardised(_signed_log(graph.structure)))
    embedding = read_label_embeddings(embeddings_path, label, graph.keys) if embeddings_path else None
    if embedding is not None:
        components = min(config.embedding_components, embedding.shape[1])
        reduced = PCA(n_components=components, random_state=config.seed).fit_transform(embedding)
        blocks.append(config.embedding_weight * StandardScaler().fit_transform(reduced))
    if not blocks:
        raise ValueError(f"{label} nodes have no features and no relationships to segment them on")
    x = np.hstack(blocks)
    k, silhouette = (config.k, {}) if config.k is not None else choose_k(x, config)
    k = min(k, len(x) - 1)
    segment, stability, aris = stable_kmeans(x, k, config)
    deviations = pd.DataFrame(described, columns=names).groupby(segment).mean()
    counts = np.bincount(segment, minlength=k)
    profiles = pd.DataFrame({"segment_id": [f"S{n + 1:02d}" for n in range(k)],
                             "segment": _names(deviations, k),
                             "nodes": counts, "share": np.round(counts / len(x), 4),
                             "distinctive": [_distinctive(deviations, n) for n in range(k)],
                             "top_neighbours": _top_neighbours(tables_dir, label, graph.keys, segment, k)})
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "segments.parquet"
    pd.DataFrame({"id": graph.keys, "segment_id": profiles["segment_id"].to_numpy()[segment],
                  "segment": profiles["segment"].to_numpy()[segment]}).to_parquet(path, index=False)
    profiles[PROFILE_COLUMNS].to_parquet(out_dir / "segment_profiles.parquet", index=False)
    seconds = round(time.perf_counter() - started, 2)
    (out_dir / "segments.json").write_text(json.dumps(
        {"label": label, "k": k, "silhouette": silhouette, "stability_ari": stability, "ari_per_seed_pair": aris,
         "features": names, "embedding": str(embeddings_path) if embedding is not None else None,
         "seconds": seconds}, indent=2))
    return NodeSegmentResult(path, label, k, silhouette, stability, profiles, seconds)


def _names(deviations: pd.DataFrame, k: int) -> list[str]:
    """'high X, low Y' from the two columns furthest from the population; numbered where two
    segments would share a name."""
    names = []
    for n in range(k):
        row = deviations.loc[n] if n in deviations.index else pd.Series(dtype=float)
        far = row[row.abs() >= NAMED_DEVIATION].abs().sort_values(ascending=False).index[:2]
        names.append(", ".join(f"{'high' if row[c] > 0 else 'low'} {c}" for c in far) or "typical")
    seen = pd.Series(names)
    repeated = seen.duplicated(keep=False)
    order = seen[repeated].groupby(seen[repeated]).cumcount() + 1
    return [f"{name} {order[i]}" if repeated[i] else name for i, name in enumerate(names)]


def _distinctive(deviations: pd.DataFrame, n: int, top: int = 4) -> str:
    if n not in deviations.index or deviations.shape[1] == 0:
        return ""
    row = deviations.loc[n]
    far = row.abs().sort_values(ascending=False).index[:top]
    return ", ".join(f"{c} {row[c]:+.1f} sd" for c in far)


def _top_neighbours(tables_dir: Path, label: str, keys: np.ndarray, segment: np.ndarray, k: int,
                    top: int = 3, min_reach: float = 0.05) -> list[str]:
    """Per segment, per relationship type: the neighbours linked to a share of the segment's
    nodes most above their share of all the label's nodes (lift), among those linked to at
    least ``min_reach`` of the segment."""
    model = model_of(tables_dir)
    of = pd.Series(segment, index=keys)
    sizes = np.bincount(segment, minlength=k)
    described: list[list[str]] = [[] for _ in range(k)]
    for rel_type, edge in model.edges.items():
        path = tables_dir / "edges" / f"{rel_type}.parquet"
        if not path.exists() or label not in (edge.start, edge.end):
            continue
        mine, theirs = ("start", "end") if edge.start == label else ("end", "start")
        edges = pd.read_parquet(path, columns=["start", "end"]).astype(str).drop_duplicates()
        edges = edges.assign(segment=edges[mine].map(of)).dropna(subset=["segment"])
        population = edges[theirs].value_counts() / len(keys)
        for n, group in edges.groupby("segment"):
            reach = group[theirs].value_counts() / sizes[int(n)]
            reach = reach[reach >= min_reach]
            lift = (reach / population.reindex(reach.index)).sort_values(ascending=False)
            lift = lift[lift > 1.0]
            if len(lift):
                described[int(n)].append(f"{rel_type}: " + ", ".join(
                    f"{node} ({reach[node]:.0%} of the segment, x{value:.1f})" for node, value in lift.head(top).items()))
    return ["; ".join(parts) for parts in described]
