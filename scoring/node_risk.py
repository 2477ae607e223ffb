"""Risk of any node label from a labels file (``identigraph score TABLES --labels FILE
--node-label LABEL``): the tables may be built or imported (``identigraph graph import``).

``FILE`` holds ``id,label`` (1 = fraud or abuse, 0 = legitimate) for some nodes of the label.
Trees (``HistGradientBoostingClassifier``) learn from those nodes only and score every node
of the label. Feature groups:

- ``own``: the node's feature columns (``graph.json``'s features for the label);
- ``structure``: per relationship type touching the label, the node's degree and its
  neighbours' mean degree; where the relationship has them (``graph import`` aggregates
  repeated pairs), its events (summed ``count``), summed ``weight``, and days since the last
  and the first of them (to the table's latest time);
- ``neighbourhood``: per relationship type, the mean, highest and lowest of the neighbours'
  feature columns (a banned user may post in one odd community among ordinary ones: the
  mean hides it, the extremes do not);
- ``peers``: per relationship type to another label, the nodes of the label two hops away
  (users of the same communities): the mean, over the node's neighbours, of each neighbour's
  mean member, and the highest such neighbour mean;
- ``labels``: per relationship type, the smoothed share of labelled positives among the
  other labelled nodes that share a neighbour with it (two hops; for a type between two
  nodes of the label, its direct neighbours), from the training fold's labels only;
- ``embedding``: the label's rows of an ``embeddings.parquet`` (``identigraph embed``), where
  one is given; kept only where the cross-validated AUPRC is higher with it.

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

from identigraph.graph.mapping import COUNT, FIRST_TIME, LAST_TIME, WEIGHT
from identigraph.graph.model import model_of

GROUPS = ("own", "structure", "neighbourhood", "peers", "labels")
REASON_TEXT = {"own": "its own attributes", "structure": "how many neighbours it has, and theirs",
               "neighbourhood": "what its neighbours are like",
               "peers": "what the nodes it shares neighbours with are like",
               "labels": "labelled cases near it in the graph", "embedding": "where its embedding places it"}
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
    own_names: list[str] = field(default_factory=list)  # the own columns' names
    structure_names: list[str] = field(default_factory=list)  # a readable name per structure column
    # Per relationship type to another label and side: the label's nodes x their neighbours
    # (0/1, sparse), with False; per type within the label, its links either way round in the
    # label's order (nodes x nodes, symmetric), with True.
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
    own_names = _feature_columns(declared, label, nodes, key)
    own = nodes[own_names].to_numpy(np.float32)
    structure, structure_names, neighbourhood, peers, adjacencies = [], [], [], [], []
    for rel_type, edge in model.edges.items():
        path = tables_dir / "edges" / f"{rel_type}.parquet"
        if label not in (edge.start, edge.end) or not path.exists():
            continue
        edges = pd.read_parquet(path)
        within = []  # for a type within the label: its links from each end, in the label's order
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
            named = rel_type if len(sides) == 1 else f"{rel_type} ({mine})"
            structure_names += [f"{named} neighbours", f"{named} neighbours' degree"]
            for name, column in edge_activity(edges, rows, present, len(keys)).items():
                structure.append(column)
                structure_names.append(f"{named} {name}")
            if other_label == label:
                # Within the label, a link is a neighbour whichever way it was written: a user
                # graph may list each pair once, either way round, or both ways.
                within.append(_same_label(adjacency, other_keys, index))
                continue
            other_nodes = tables_dir / "nodes" / f"{other_label}.parquet"
            if other_nodes.exists():
                frame = pd.read_parquet(other_nodes)
                other_key = model.nodes[other_label].key
                columns = _feature_columns(declared, other_label, frame, other_key)
                if columns:
                    values = frame.set_index(frame[other_key].astype(str))[columns].reindex(other_keys)
                    values = values.fillna(0.0).to_numpy(np.float32)
                    neighbourhood += [mean @ values, *neighbour_extremes(adjacency, values)]
            if own.shape[1]:
                members = sp.diags(1.0 / np.maximum(other_degree, 1.0)) @ adjacency.T.tocsr()
                member_mean = (members @ own).astype(np.float32)
                peers += [mean @ member_mean, neighbour_extremes(adjacency, member_mean)[0]]
            adjacencies.append((adjacency, False))
        if within:
            linked = (within[0] + within[1]).tocsr() if len(within) == 2 else within[0]
            linked.setdiag(0)
            linked.eliminate_zeros()
            linked.data[:] = 1.0
            if own.shape[1]:
                mean = sp.diags(1.0 / np.maximum(np.asarray(linked.sum(axis=1)).ravel(), 1.0)) @ linked
                neighbourhood += [mean @ own, *neighbour_extremes(linked, own)]
            adjacencies.append((linked, True))
    return NodeGraph(keys, own, _stacked(structure, len(keys)), _stacked(neighbourhood, len(keys)),
                     _stacked(peers, len(keys)), own_names, structure_names, adjacencies)


def read_label_embeddings(path: Path, label: str, keys: np.ndarray) -> np.ndarray | None:
    """The rows of an ``embeddings.parquet`` (``identigraph embed``) whose ``node_type`` is
    ``label`` (any case), in the order of ``keys``; None where the file has none of the label.
    A node the file lacks is an error: the embeddings are of another graph."""
    import pyarrow.parquet as pq

    if not Path(path).exists():
        raise NodeScoringError(f"{path} is missing; train embeddings first (`identigraph embed TABLES ...`)")
    table = pq.read_table(path, columns=["node_type", "node_id", "embedding"]).to_pandas()
    table = table[table["node_type"].str.lower() == label.lower()]
    if table.empty:
        return None
    vectors = pd.Series(list(table["embedding"]), index=table["node_id"].astype(str).to_numpy())
    missing = ~pd.Index(keys).isin(vectors.index)
    if missing.any():
        raise NodeScoringError(f"{path} has no embedding for {int(missing.sum())} {label} nodes (e.g. {keys[missing][0]});"
                               " embed the current tables again")
    return np.asarray(vectors.reindex(keys).tolist(), dtype=np.float32)


def edge_activity(edges: pd.DataFrame, rows: np.ndarray, present: np.ndarray, nodes: int) -> dict[str, np.ndarray]:
    """Per node (``rows``: the node of each edge, NaN for none), what the relationship's
    aggregated columns say: events (only where some pair repeats), summed weight, days since
    the last and the first event. Missing (NaN) for a node without such edges."""
    at = rows[present].astype(np.int64)
    out = {}

    def summed(values: np.ndarray) -> np.ndarray:
        total = np.bincount(at, weights=values, minlength=nodes)
        return np.where(np.bincount(at, minlength=nodes) > 0, total, np.nan)

    if COUNT in edges.columns and (edges[COUNT] > 1).any():
        out["events"] = summed(edges[COUNT].to_numpy(float)[present])
    if WEIGHT in edges.columns and pd.api.types.is_numeric_dtype(edges[WEIGHT]):
        out["weight"] = summed(edges[WEIGHT].fillna(0).to_numpy(float)[present])
    for name, column, pick in (("days since last", LAST_TIME, np.maximum), ("days since first", FIRST_TIME, np.minimum)):
        if column not in edges.columns:
            continue
        times = pd.to_datetime(edges[column]).to_numpy("datetime64[s]").astype("int64").astype(float)[present]
        reference = np.nanmax(times) if len(times) else 0.0
        extreme = np.full(nodes, np.nan)
        fill = -np.inf if pick is np.maximum else np.inf
        gathered = np.full(nodes, fill)
        pick.at(gathered, at, times)
        extreme[np.isfinite(gathered)] = gathered[np.isfinite(gathered)]
        out[name] = (reference - extreme) / 86400.0
    return out


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


def _matrix(graph: NodeGraph, groups: tuple[str, ...], labels_part: np.ndarray,
            embedding: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    parts = {"own": graph.own, "structure": graph.structure, "neighbourhood": graph.neighbourhood,
             "peers": graph.peers, "labels": labels_part,
             "embedding": np.zeros((len(graph.keys), 0)) if embedding is None else embedding}
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
    embedding_kept: bool | None = None  # None: no embeddings of the label were given


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


def cross_validate(graph: NodeGraph, y: np.ndarray, labelled: np.ndarray, folds: int, seed: int,
                   models: dict[str, tuple[str, ...]] | None = None, embedding: np.ndarray | None = None) -> dict:
    """Out-of-fold AUROC and AUPRC of each of ``models`` (name -> feature groups; default the
    graph model and the no-graph baseline), on the same folds."""
    models = models or {"graph": GROUPS, "no graph": ("own",)}
    ids = np.flatnonzero(labelled)
    oof = {name: np.zeros(len(ids)) for name in models}
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, held in splitter.split(ids, y[ids]):
        fold_labelled = np.zeros(len(graph.keys), dtype=bool)
        fold_labelled[ids[train]] = True
        fold_labels = label_features(graph, y, fold_labelled)
        for name, groups in models.items():
            features, _ = _matrix(graph, groups, fold_labels, embedding)
            model = _trees(seed).fit(features[ids[train]], y[ids[train]])
            oof[name][held] = model.predict_proba(features[ids[held]])[:, 1]
    return {name: {"auroc": round(float(roc_auc_score(y[ids], scores)), 4),
                   "auprc": round(float(average_precision_score(y[ids], scores)), 4)} for name, scores in oof.items()}


def score_nodes(tables_dir: Path, labels_path: Path, label: str, folds: int = 5, seed: int = 7,
                groups: tuple[str, ...] = GROUPS, out_dir: Path | None = None,
                embeddings_path: Path | None = None) -> NodeRiskResult:
    """Cross-validated figures, then every node of ``label`` scored by trees fitted on all the
    labels; ``risk.parquet`` (id, risk_score, risk_reasons, label) and ``risk.json`` in
    ``out_dir`` (default ``tables_dir``). ``groups``: the feature groups the scoring model uses
    (("own",) is the no-graph model). ``embeddings_path``: an ``embeddings.parquet`` whose rows
    of the label are tried as one more group, kept where the held-out AUPRC is higher."""
    started = time.perf_counter()
    graph = node_graph(tables_dir, label)
    embedding = read_label_embeddings(embeddings_path, label, graph.keys) if embeddings_path else None
    y, labelled, unmatched = read_labels(labels_path, graph.keys)
    positives = int(y[labelled].sum())
    if positives < folds or labelled.sum() - positives < folds:
        raise NodeScoringError(f"{labels_path}: {positives} positive and {int(labelled.sum()) - positives} negative "
                               f"labels match {label} nodes; cross-validation needs at least {folds} of each")
    # The no-graph model is the baseline of any other; asked for itself, it is fitted once.
    models: dict[str, tuple[str, ...]] = ({"no graph": ("own",)} if groups == ("own",) else
                                          {"graph": groups, "no graph": ("own",)})
    if embedding is not None and "graph" in models:
        models["graph + embeddings"] = (*groups, "embedding")
    evaluation = cross_validate(graph, y, labelled, folds, seed, models, embedding)
    with_embedding = "graph + embeddings" in evaluation and \
        evaluation["graph + embeddings"]["auprc"] > evaluation["graph"]["auprc"]
    if with_embedding:
        groups = models["graph + embeddings"]
    features, column_groups = _matrix(graph, groups, label_features(graph, y, labelled), embedding)
    model = _trees(seed).fit(features[labelled], y[labelled])
    probability = np.clip(model.predict_proba(features)[:, 1], 1e-6, 1 - 1e-6)
    log_odds = np.log(probability / (1 - probability))
    typical = np.median(features[labelled], axis=0)
    drops = {}
    for group in dict.fromkeys(column_groups):
        occluded = features.copy()
        columns = [i for i, g in enumerate(column_groups) if g == group]
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
                            round(time.perf_counter() - started, 2), None if embedding is None else with_embedding)
    (out_dir / "risk.json").write_text(json.dumps({
        "label": label, "nodes": result.nodes, "labelled": result.labelled, "positives": positives,
        "labels_naming_no_node": unmatched, "folds": folds, "seed": seed,
        "feature_groups": {g: column_groups.count(g) for g in dict.fromkeys(column_groups)},
        "embeddings": {"file": str(embeddings_path), "kept": with_embedding} if embedding is not None else None,
        "evaluation": evaluation, "seconds": result.seconds}, indent=2))
    return result
