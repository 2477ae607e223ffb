"""Risk of any node label from a labels file (``identigraph score TABLES --labels FILE
--node-label LABEL``): the tables may be built or imported (``identigraph graph import``).

``FILE`` holds ``id,label`` (1 = fraud or abuse, 0 = legitimate) for some nodes of the label.
Trees (``HistGradientBoostingClassifier``) learn from those nodes only and score every node
of the label. Feature groups:

- ``own``: the node's feature columns (``graph.json``'s features for the label);
- ``structure``: per relationship type touching the label, the node's degree and its
  neighbours' mean degree;
- ``neighbourhood``: per relationship type, the mean, highest and lowest of the neighbours'
  feature columns (a banned user may post in one odd community among ordinary ones: the
  mean hides it, the extremes do not);
- ``peers``: per relationship type to another label, the nodes of the label two hops away
  (users of the same communities): the mean, over the node's neighbours, of each neighbour's
  mean member, and the highest such neighbour mean;
- ``labels``: per relationship type, the smoothed share of labelled positives among the
  other labelled nodes that share a neighbour with it (two hops; for a type between two
  nodes of the label, its direct neighbours), from the training fold's labels only.

Held-out figures come from stratified cross-validation over the labelled nodes, the graph
model beside the same trees on ``own`` alone (the no-graph baseline), on the same folds.
Reasons: the three groups whose replacement by the labelled nodes' medians lowers the
node's log-odds most.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from graph.model import model_of

GROUPS = ("own", "structure", "neighbourhood", "peers", "labels")
REASON_TEXT = {"own": "its own attributes", "structure": "how many neighbours it has, and theirs",
               "neighbourhood": "what its neighbours are like",
               "peers": "what the nodes it shares neighbours with are like",
               "labels": "labelled cases near it in the graph"}
# Edges gathered at once when taking neighbours' extremes (rows x features floats each).
EXTREMES_CHUNK_EDGES = 1_000_000
# Positives among a neighbour's labelled nodes are shrunk toward the base rate by this many
# pseudo-nodes: a community with one labelled member says little.
SMOOTHING = 5.0


class NodeScoringError(ValueError):
    """The tables, label or labels file cannot be scored; the message says what to do."""


@dataclass
class NodeGraph:
    keys: np.ndarray  # the label's node keys, in table order
    own: np.ndarray  # nodes x own features
    structure: np.ndarray
    neighbourhood: np.ndarray
    peers: np.ndarray
    # Per relationship type and side: the label's nodes x their neighbours (0/1, sparse), and
    # whether the neighbours are of the label too (columns then in the label's order).
    adjacencies: list[tuple[sp.csr_matrix, bool]] = field(default_factory=list)


def _feature_columns(declared: dict[str, list[str]], label: str, frame: pd.DataFrame, key: str) -> list[str]:
    """The label's features as ``graph.json`` declares them (an imported graph), else its
    numeric columns."""
    if label in declared:
        return [c for c in declared[label] if c in frame.columns]
    return [c for c in frame.columns if c != key and pd.api.types.is_numeric_dtype(frame[c])]


def _stacked(parts: list[np.ndarray], rows: int) -> np.ndarray:
    return np.column_stack(parts) if parts else np.zeros((rows, 0), np.float32)


def node_graph(tables_dir: Path, label: str) -> NodeGraph:
    tables_dir = Path(tables_dir)
    model = model_of(tables_dir)
    if label not in model.nodes:
        raise NodeScoringError(f"{tables_dir} has no node label {label!r}; it has {sorted(model.nodes)}")
    info = tables_dir / "graph.json"
    declared = json.loads(info.read_text()).get("features", {}) if info.exists() else {}
    nodes = pd.read_parquet(tables_dir / "nodes" / f"{label}.parquet")
    key = model.nodes[label].key
    keys = nodes[key].astype(str).to_numpy()
    index = pd.Series(np.arange(len(keys)), index=keys)
    own = nodes[_feature_columns(declared, label, nodes, key)].to_numpy(np.float32)
    structure, neighbourhood, peers, adjacencies = [], [], [], []
    for rel_type, edge in model.edges.items():
        path = tables_dir / "edges" / f"{rel_type}.parquet"
        if label not in (edge.start, edge.end) or not path.exists():
            continue
        edges = pd.read_parquet(path, columns=["start", "end"])
        # Each end the label sits at (both, for a type within the label).
        sides = [(mine, theirs, other) for mine, theirs, at, other in (("start", "end", edge.start, edge.end),
                                                                        ("end", "start", edge.end, edge.start))
                 if at == label]
        for mine, theirs, other_label in sides:
            rows = index.reindex(edges[mine].astype(str)).to_numpy()
            other_codes, other_keys = pd.factorize(edges[theirs].astype(str))
            present = ~np.isnan(rows)
            adjacency = sp.csr_matrix((np.ones(int(present.sum()), dtype=np.float32),
                                       (rows[present].astype(np.int64), other_codes[present])),
                                      shape=(len(keys), len(other_keys)))
            adjacency.data[:] = 1.0
            degree = np.asarray(adjacency.sum(axis=1)).ravel()
            other_degree = np.asarray(adjacency.sum(axis=0)).ravel()
            mean = sp.diags(1.0 / np.maximum(degree, 1.0)) @ adjacency
            structure += [degree, mean @ other_degree]
            other_nodes = tables_dir / "nodes" / f"{other_label}.parquet"
            if other_nodes.exists():
                frame = pd.read_parquet(other_nodes)
                other_key = model.nodes[other_label].key
                columns = _feature_columns(declared, other_label, frame, other_key)
                if columns:
                    values = frame.set_index(frame[other_key].astype(str))[columns].reindex(other_keys)
                    values = values.fillna(0.0).to_numpy(np.float32)
                    neighbourhood += [mean @ values, *neighbour_extremes(adjacency, values)]
            same = other_label == label
            if not same and own.shape[1]:
                members = sp.diags(1.0 / np.maximum(other_degree, 1.0)) @ adjacency.T.tocsr()
                member_mean = (members @ own).astype(np.float32)
                peers += [mean @ member_mean, neighbour_extremes(adjacency, member_mean)[0]]
            adjacencies.append((_same_label(adjacency, other_keys, index) if same else adjacency, same))
    return NodeGraph(keys, own, _stacked(structure, len(keys)), _stacked(neighbourhood, len(keys)),
                     _stacked(peers, len(keys)), adjacencies)


def neighbour_extremes(adjacency: sp.csr_matrix, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``adjacency``, the highest and the lowest of its neighbours' ``values`` (rows
    x columns); missing (NaN) for a node without neighbours, which the trees handle."""
    adjacency = adjacency.tocsr()
    adjacency.sort_indices()
    highest = np.full((adjacency.shape[0], values.shape[1]), np.nan, np.float32)
    lowest = highest.copy()
    indptr = adjacency.indptr
    start = 0
    while start < adjacency.shape[0]:
        # Rows whose edges fit the chunk (at least one row, however many edges it has).
        stop = max(int(np.searchsorted(indptr, indptr[start] + EXTREMES_CHUNK_EDGES, side="right")) - 1, start + 1)
        stop = min(stop, adjacency.shape[0])
        rows = np.arange(start, stop)
        filled = rows[indptr[rows + 1] > indptr[rows]]
        if len(filled):
            gathered = values[adjacency.indices[indptr[start]:indptr[stop]]]
            offsets = indptr[filled] - indptr[start]
            highest[filled] = np.maximum.reduceat(gathered, offsets, axis=0)
            lowest[filled] = np.minimum.reduceat(gathered, offsets, axis=0)
        start = stop
    return highest, lowest


def _same_label(adjacency: sp.csr_matrix, other_keys, index: pd.Series) -> sp.csr_matrix:
    """Neighbours of the same label as a nodes x nodes matrix (columns in the label's order)."""
    columns = index.reindex(pd.Index(other_keys)).to_numpy()
    known = ~np.isnan(columns)
    mapping = sp.csr_matrix((np.ones(int(known.sum())), (np.flatnonzero(known), columns[known].astype(np.int64))),
                            shape=(len(other_keys), len(index)))
    return (adjacency @ mapping).tocsr()


def label_features(graph: NodeGraph, known: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    """Per relationship type, from ``labelled`` nodes' labels only, the node's own never used:
    for a type to another label, the mean and the highest smoothed positive share among the
    labelled nodes of each neighbour (users of one community); for a type within the label,
    that share among its direct neighbours."""
    base = float(known[labelled].mean()) if labelled.any() else 0.0
    positive = (known * labelled).astype(float)
    counted = labelled.astype(float)
    columns = []
    for adjacency, same in graph.adjacencies:
        coo = adjacency.tocoo()
        degree = np.maximum(np.bincount(coo.row, minlength=adjacency.shape[0]), 1)
        if same:
            p = adjacency @ positive - adjacency.diagonal() * positive
            n = adjacency @ counted - adjacency.diagonal() * counted
            columns.append((p + SMOOTHING * base) / (n + SMOOTHING))
            continue
        p = (adjacency.T @ positive)[coo.col] - positive[coo.row]
        n = (adjacency.T @ counted)[coo.col] - counted[coo.row]
        share = (p + SMOOTHING * base) / (n + SMOOTHING)
        highest = np.full(adjacency.shape[0], base)
        np.maximum.at(highest, coo.row, share)
        columns += [np.bincount(coo.row, weights=share, minlength=adjacency.shape[0]) / degree, highest]
    return np.column_stack(columns) if columns else np.zeros((len(graph.keys), 0))


def _matrix(graph: NodeGraph, groups: tuple[str, ...], labels_part: np.ndarray) -> tuple[np.ndarray, list[str]]:
    parts = {"own": graph.own, "structure": graph.structure, "neighbourhood": graph.neighbourhood,
             "peers": graph.peers, "labels": labels_part}
    chosen = [(g, parts[g]) for g in groups if parts[g].shape[1]]
    if not chosen:  # a label without features of its own: the baseline is the base rate
        return np.zeros((len(graph.keys), 1), np.float32), [groups[0]]
    return np.column_stack([p for _, p in chosen]).astype(np.float32), [g for g, p in chosen for _ in range(p.shape[1])]


def _trees(seed: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, max_leaf_nodes=15, l2_regularization=1.0,
                                          random_state=seed)


@dataclass
class NodeRiskResult:
    path: Path
    label: str
    nodes: int
    labelled: int
    positives: int
    unmatched_labels: int
    evaluation: dict
    seconds: float


def read_labels(path: Path, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(label 0/1 per node, labelled mask, label rows naming no node)."""
    try:
        frame = pd.read_csv(path, dtype=str)
    except (OSError, ValueError) as error:
        raise NodeScoringError(f"{path}: cannot read the labels file: {error}") from error
    if list(frame.columns[:2]) != ["id", "label"]:
        raise NodeScoringError(f"{path}: the labels file needs the columns id,label (1 = fraud or abuse, 0 = legitimate);"
                               f" it has {list(frame.columns)}")
    values = pd.to_numeric(frame["label"], errors="coerce")
    if values.isna().any() or not values.isin([0, 1]).all():
        bad = frame.loc[values.isna() | ~values.isin([0, 1]), "label"].iloc[0]
        raise NodeScoringError(f"{path}: label {bad!r} is not 0 or 1")
    index = pd.Series(np.arange(len(keys)), index=keys)
    rows = index.reindex(frame["id"].str.strip()).to_numpy()
    matched = ~np.isnan(rows)
    y, labelled = np.zeros(len(keys)), np.zeros(len(keys), dtype=bool)
    y[rows[matched].astype(np.int64)] = values[matched].to_numpy()
    labelled[rows[matched].astype(np.int64)] = True
    return y, labelled, int((~matched).sum())


def cross_validate(graph: NodeGraph, y: np.ndarray, labelled: np.ndarray, folds: int, seed: int) -> dict:
    """Out-of-fold AUROC and AUPRC of the graph model and of the no-graph baseline."""
    ids = np.flatnonzero(labelled)
    oof = {"graph": np.zeros(len(ids)), "no graph": np.zeros(len(ids))}
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, held in splitter.split(ids, y[ids]):
        fold_labelled = np.zeros(len(graph.keys), dtype=bool)
        fold_labelled[ids[train]] = True
        for name, groups in (("graph", GROUPS), ("no graph", ("own",))):
            features, _ = _matrix(graph, groups, label_features(graph, y, fold_labelled))
            model = _trees(seed).fit(features[ids[train]], y[ids[train]])
            oof[name][held] = model.predict_proba(features[ids[held]])[:, 1]
    return {name: {"auroc": round(float(roc_auc_score(y[ids], scores)), 4),
                   "auprc": round(float(average_precision_score(y[ids], scores)), 4)} for name, scores in oof.items()}


def score_nodes(tables_dir: Path, labels_path: Path, label: str, folds: int = 5, seed: int = 7,
                groups: tuple[str, ...] = GROUPS, out_dir: Path | None = None) -> NodeRiskResult:
    """Cross-validated figures, then every node of ``label`` scored by trees fitted on all the
    labels; ``risk.parquet`` (id, risk_score, risk_reasons, label) and ``risk.json`` in
    ``out_dir`` (default ``tables_dir``). ``groups``: the feature groups the scoring model uses
    (("own",) is the no-graph model)."""
    started = time.perf_counter()
    graph = node_graph(tables_dir, label)
    y, labelled, unmatched = read_labels(labels_path, graph.keys)
    positives = int(y[labelled].sum())
    if positives < folds or labelled.sum() - positives < folds:
        raise NodeScoringError(f"{labels_path}: {positives} positive and {int(labelled.sum()) - positives} negative "
                               f"labels match {label} nodes; cross-validation needs at least {folds} of each")
    evaluation = cross_validate(graph, y, labelled, folds, seed)
    features, groups = _matrix(graph, groups, label_features(graph, y, labelled))
    model = _trees(seed).fit(features[labelled], y[labelled])
    probability = np.clip(model.predict_proba(features)[:, 1], 1e-6, 1 - 1e-6)
    log_odds = np.log(probability / (1 - probability))
    typical = np.median(features[labelled], axis=0)
    drops = {}
    for group in dict.fromkeys(groups):
        occluded = features.copy()
        columns = [i for i, g in enumerate(groups) if g == group]
        occluded[:, columns] = typical[columns]
        p = np.clip(model.predict_proba(occluded)[:, 1], 1e-6, 1 - 1e-6)
        drops[group] = log_odds - np.log(p / (1 - p))
    names = list(drops)
    stacked = np.column_stack([drops[g] for g in names])
    reasons = [[f"{REASON_TEXT[names[j]]} raise the risk ({stacked[i, j]:+.2f} log-odds)"
                for j in np.argsort(-stacked[i])[:3] if stacked[i, j] > 0] for i in range(len(graph.keys))]
    out = pd.DataFrame({"id": graph.keys, "risk_score": probability, "risk_reasons": reasons,
                        "label": np.where(labelled, y, np.nan)})
    out_dir = Path(out_dir or tables_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "risk.parquet"
    out.to_parquet(path, index=False)
    result = NodeRiskResult(path, label, len(graph.keys), int(labelled.sum()), positives, unmatched, evaluation,
                            round(time.perf_counter() - started, 2))
    (out_dir / "risk.json").write_text(json.dumps({
        "label": label, "nodes": result.nodes, "labelled": result.labelled, "positives": positives,
        "labels_naming_no_node": unmatched, "folds": folds, "seed": seed,
        "feature_groups": {g: groups.count(g) for g in dict.fromkeys(groups)},
        "evaluation": evaluation, "seconds": result.seconds}, indent=2))
    return result
