"""Temporal link prediction on one relationship type of any graph tables: train on the
relationships that began before a time T, rank the end nodes for each start node, and
score the new pairs that began at or after T (the protocol of issue 18:
``identigraph embed TABLES --target REL --split-time T``).

Only starts with history before T and at least one new pair after it are evaluated, on their
new pairs with ends that had history before T too (an end first seen after T cannot be
ranked from the past); pairs a start already had before T are never ranked (they are not
new). Metrics: Recall@k (hits
over the start's new pairs) and NDCG@k (binary gains), averaged over starts.

Recommenders, each ``fit(train) -> scores(starts)``:
- ``MostPopular``: ends by how many starts they have;
- ``ItemKNN``: cosine similarity between ends over their starts, summed over a start's ends;
- ``EASE`` (Steck 2019): a closed-form item-item linear model with an L2 penalty;
- ``FastRP`` embeddings of the bipartite graph, scored by dot product;
- ``LightGCN`` (He et al. 2020): embeddings propagated over the normalised bipartite
  adjacency, trained by a softmax over the ends (PyTorch, CPU or CUDA).

EASE's penalty is chosen on a validation split cut from the training period the same way
(the last ``VALIDATION_SHARE`` of it), never on the test pairs.
"""
from __future__ import annotations

import functools
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from identigraph.graph.mapping import FIRST_TIME
from identigraph.graph.model import model_of

K = 20
# The validation period: this share of the training period's span, at its end.
VALIDATION_SHARE = 0.15
EASE_PENALTIES = (50.0, 200.0, 500.0, 2000.0)
LIGHTGCN_DIM = 256
LIGHTGCN_STEPS = 300
# Past this many ends, a step's softmax runs over the ends of its starts plus this many drawn
# uniformly (the logits are starts x ends).
MAX_SOFTMAX_ENDS = 16384


class TemporalSplitError(ValueError):
    """The tables cannot be split as asked; the message says why and what to do."""


@dataclass
class Interactions:
    """Pairs as a starts x ends 0/1 matrix (CSR), with the keys behind the indices."""

    matrix: sp.csr_matrix
    start_keys: np.ndarray
    end_keys: np.ndarray


@dataclass
class TemporalSplit:
    train: Interactions
    test: dict[int, np.ndarray]  # start index -> indices of its new ends after T
    split_time: pd.Timestamp
    pairs_before: int
    pairs_after: int


def temporal_split(edges: pd.DataFrame, split_time: pd.Timestamp, time_column: str = FIRST_TIME) -> TemporalSplit:
    """``edges``: start, end and the time each pair began. Indices cover every start and end
    of the table, so a node first seen after T is a known node without history."""
    if time_column not in edges.columns:
        raise TemporalSplitError(f"the relationship has no {time_column!r} column: import it with time = \"<column>\"")
    start_codes, start_keys, end_codes, end_keys = _encoded_pairs(edges)
    times = pd.to_datetime(edges[time_column])
    before = (times < split_time).to_numpy()
    if not before.any() or before.all():
        raise TemporalSplitError(f"no relationship begins on both sides of {split_time} (they run from "
                                 f"{times.min()} to {times.max()}); choose a --split-time between")
    matrix = _pair_matrix(start_codes[before], end_codes[before], (len(start_keys), len(end_keys)))
    has_history = np.asarray(matrix.sum(axis=1)).ravel() > 0
    # An end no start had before T cannot be ranked from the past by any recommender here.
    end_history = np.asarray(matrix.sum(axis=0)).ravel() > 0
    after = ~before & has_history[start_codes] & end_history[end_codes]
    test = pd.Series(end_codes[after]).groupby(start_codes[after]).apply(np.asarray).to_dict()
    return TemporalSplit(Interactions(matrix, start_keys, end_keys), test, split_time, int(before.sum()),
                         int(after.sum()))


def _encoded_pairs(edges: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(start codes, start keys, end codes, end keys): every key of the table, in key order."""
    start_codes, start_keys = pd.factorize(edges["start"].astype(str), sort=True)
    end_codes, end_keys = pd.factorize(edges["end"].astype(str), sort=True)
    return start_codes, np.asarray(start_keys), end_codes, np.asarray(end_keys)


def _label_keys(tables_dir: Path, model, label: str, seen: pd.Series) -> np.ndarray:
    """The label's node keys (its node table's, where there is one) and any other key
    ``seen`` on the relationship, sorted."""
    keys = [seen.astype(str)]
    path = Path(tables_dir) / "nodes" / f"{label}.parquet"
    if path.exists():
        keys.append(pd.read_parquet(path, columns=[model.nodes[label].key]).iloc[:, 0].astype(str))
    return np.sort(pd.concat(keys, ignore_index=True).unique())


def _pair_matrix(start_codes: np.ndarray, end_codes: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """Starts x ends, 1 where a pair occurs (however often)."""
    matrix = sp.csr_matrix((np.ones(len(start_codes), dtype=np.float32), (start_codes, end_codes)), shape=shape)
    matrix.data[:] = 1.0
    return matrix


def ranking_metrics(scores: np.ndarray, starts: np.ndarray, seen: sp.csr_matrix, test: dict[int, np.ndarray],
                    k: int = K) -> tuple[float, float]:
    """Mean Recall@k and NDCG@k over ``starts`` (rows of ``scores``); ends a start had in
    ``seen`` are not ranked."""
    scores = np.array(scores, dtype=np.float64, copy=True)
    rows = seen[starts]
    scores[np.repeat(np.arange(len(starts)), np.diff(rows.indptr)), rows.indices] = -np.inf
    top = np.argpartition(-scores, kth=min(k, scores.shape[1] - 1), axis=1)[:, :k]
    order = np.take_along_axis(scores, top, axis=1).argsort(axis=1)[:, ::-1]
    top = np.take_along_axis(top, order, axis=1)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    recalls, ndcgs = [], []
    for row, start in enumerate(starts.tolist()):
        relevant = test[start]
        hits = np.isin(top[row], relevant)
        recalls.append(hits.sum() / len(relevant))
        ndcgs.append((hits * discounts).sum() / discounts[:min(len(relevant), k)].sum())
    return float(np.mean(recalls)), float(np.mean(ndcgs))


class MostPopular:
    name = "most popular"

    def fit(self, train: sp.csr_matrix) -> "MostPopular":
        self.popularity = np.asarray(train.sum(axis=0)).ravel()
        return self

    def scores(self, starts: np.ndarray, train: sp.csr_matrix) -> np.ndarray:
        return np.tile(self.popularity, (len(starts), 1))


class ItemKNN:
    name = "item-kNN"

    def __init__(self, neighbours: int = 100):
        self.neighbours = neighbours

    def fit(self, train: sp.csr_matrix) -> "ItemKNN":
        norms = np.sqrt(np.asarray(train.multiply(train).sum(axis=0)).ravel())
        normalised = train.multiply(1.0 / np.maximum(norms, 1e-12)).tocsc()
        similarity = (normalised.T @ normalised).toarray()
        np.fill_diagonal(similarity, 0.0)
        if self.neighbours < similarity.shape[0]:  # keep each end's strongest neighbours
            cut = np.partition(similarity, -self.neighbours, axis=0)[-self.neighbours]
            similarity[similarity < cut[None, :]] = 0.0
        self.similarity = similarity
        return self

    def scores(self, starts: np.ndarray, train: sp.csr_matrix) -> np.ndarray:
        return np.asarray(train[starts] @ self.similarity)


class EASE:
    name = "EASE"

    def __init__(self, penalty: float = 500.0):
        self.penalty = penalty

    def fit(self, train: sp.csr_matrix) -> "EASE":
        gram = (train.T @ train).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.penalty
        precision = np.linalg.inv(gram)
        self.weights = precision / (-np.diag(precision))
        np.fill_diagonal(self.weights, 0.0)
        return self

    def scores(self, starts: np.ndarray, train: sp.csr_matrix) -> np.ndarray:
        return np.asarray(train[starts] @ self.weights)


@dataclass
class Evaluation:
    name: str
    recall: float
    ndcg: float
    seconds: float
    settings: dict = field(default_factory=dict)


def validation_split(edges: pd.DataFrame, split: TemporalSplit, time_column: str = FIRST_TIME) -> TemporalSplit:
    """The same protocol inside the training period: its last ``VALIDATION_SHARE`` is the test,
    for choosing a recommender's settings without the test pairs."""
    times = pd.to_datetime(edges[time_column])
    before = (times < split.split_time).to_numpy()
    train_times = times[before]
    cut = train_times.max() - (train_times.max() - train_times.min()) * VALIDATION_SHARE
    return temporal_split(edges[before], cut, time_column)


def evaluate(model, split: TemporalSplit, k: int = K, settings: dict | None = None) -> Evaluation:
    started = time.perf_counter()
    train = split.train.matrix
    model.fit(train)
    starts = np.array(sorted(split.test), dtype=np.int64)
    recalls, ndcgs = [], []
    for chunk in np.array_split(starts, max(1, len(starts) // 1000)):
        r, n = ranking_metrics(model.scores(chunk, train), chunk, train, split.test, k)
        recalls.append(r * len(chunk))
        ndcgs.append(n * len(chunk))
    return Evaluation(model.name, float(sum(recalls) / len(starts)), float(sum(ndcgs) / len(starts)),
                      round(time.perf_counter() - started, 2), settings or {})


def choose_on_validation(candidates: list, validation: TemporalSplit, k: int = K):
    """The candidate with the best validation NDCG@k."""
    return max(candidates, key=lambda model: evaluate(model, validation, k).ndcg)


def read_target(tables_dir: Path, target: str) -> pd.DataFrame:
    """The target relationship's table of a graph tables folder."""
    model = model_of(tables_dir)
    if target not in model.edges:
        raise TemporalSplitError(f"{tables_dir} has no relationship type {target!r}; it has {sorted(model.edges)}")
    path = Path(tables_dir) / "edges" / f"{target}.parquet"
    if not path.exists():
        raise TemporalSplitError(f"{path} is missing; import or build the tables again")
    return pd.read_parquet(path)


class LightGCN:
    """Embeddings of starts and ends, propagated ``layers`` times over the symmetric-normalised
    bipartite adjacency and averaged over layers (He et al. 2020), trained by a softmax over
    the ends: each step takes ``batch_starts`` starts and maximises the likelihood of their
    ends against every other end (cosine similarity over ``temperature``); past
    ``MAX_SOFTMAX_ENDS`` ends, against those of the step's starts plus a uniform sample.

    Why not BPR with one sampled negative each, as the paper does: on Online Retail II it
    reached Recall@20 0.076 in 60 epochs where this reaches 0.099 (dim 256) in 300 steps; one
    random end is almost always an easy negative. Why dim 256: a dot product of dim d is an
    item-item model of rank d, and EASE itself cut to rank 64 / 256 / 1,024 gives 0.092 /
    0.101 / 0.103 there (full rank 0.104): the catalogue's co-purchases are fine-grained.
    Two layers of 2,048 starts: 0.0994 in 49 s there, where three of 4,096 gave 0.0988 in
    100 s and took 0.86 s a step on a million pairs (propagation is most of a step)."""

    name = "LightGCN"

    def __init__(self, dim: int = LIGHTGCN_DIM, layers: int = 2, steps: int = LIGHTGCN_STEPS,
                 learning_rate: float = 0.01, temperature: float = 0.1, batch_starts: int = 2048,
                 seed: int = 7, device: str | None = None):
        self.dim, self.layers, self.steps = dim, layers, steps
        self.learning_rate, self.temperature, self.batch_starts, self.seed = learning_rate, temperature, batch_starts, seed
        self.device = device

    def _adjacency(self, train: sp.csr_matrix, torch):
        n_starts, n_ends = train.shape
        coo = train.tocoo()
        rows = np.concatenate([coo.row, coo.col + n_starts])
        cols = np.concatenate([coo.col + n_starts, coo.row])
        degree = np.bincount(rows, minlength=n_starts + n_ends).astype(np.float32)
        values = 1.0 / np.sqrt(np.maximum(degree[rows], 1.0) * np.maximum(degree[cols], 1.0))
        matrix = sp.csr_matrix((values, (rows, cols)), shape=(n_starts + n_ends,) * 2)
        with warnings.catch_warnings():  # PyTorch's note that CSR support is in beta: nothing to act on
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support")
            return torch.sparse_csr_tensor(torch.as_tensor(matrix.indptr, dtype=torch.int64),
                                           torch.as_tensor(matrix.indices, dtype=torch.int64),
                                           torch.as_tensor(matrix.data, dtype=torch.float32), matrix.shape,
                                           check_invariants=False)

    def _propagate(self, embedding, adjacency, torch):
        propagate = _symmetric_product()
        layer, total = embedding, embedding
        for _ in range(self.layers):
            layer = propagate(adjacency, layer)
            total = total + layer
        return torch.nn.functional.normalize(total / (self.layers + 1), dim=1)

    def fit(self, train: sp.csr_matrix) -> "LightGCN":
        import torch

        device = torch.device(self.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        generator = torch.Generator().manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        n_starts, n_ends = train.shape
        adjacency = self._adjacency(train, torch).to(device)
        embedding = torch.nn.Parameter(torch.randn(n_starts + n_ends, self.dim, generator=generator).mul_(0.1).to(device))
        optimiser = torch.optim.Adam([embedding], lr=self.learning_rate)
        active = np.flatnonzero(np.diff(train.indptr) > 0)
        self.losses = []
        for _ in range(self.steps):
            starts = active if len(active) <= self.batch_starts else np.sort(
                rng.choice(active, self.batch_starts, replace=False))
            rows = train[starts]
            ends = np.arange(n_ends) if n_ends <= MAX_SOFTMAX_ENDS else np.union1d(
                rows.indices, rng.choice(n_ends, MAX_SOFTMAX_ENDS, replace=False))
            targets = torch.as_tensor(rows[:, ends].toarray(), device=device)
            final = self._propagate(embedding, adjacency, torch)
            logits = final[torch.as_tensor(starts, device=device)] @ final[n_starts + torch.as_tensor(ends, device=device)].T
            loss = -(torch.log_softmax(logits / self.temperature, dim=1) * targets).sum() / targets.sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            self.losses.append(float(loss.detach()))
        with torch.no_grad():
            final = self._propagate(embedding, adjacency, torch).cpu().numpy()
        self.start_vectors, self.end_vectors = final[:n_starts], final[n_starts:]
        return self

    def scores(self, starts: np.ndarray, train: sp.csr_matrix) -> np.ndarray:
        return self.start_vectors[starts] @ self.end_vectors.T


@functools.cache
def _symmetric_product():
    """``adjacency @ x`` whose backward is ``adjacency @ grad``: the normalised adjacency is
    symmetric, and PyTorch's generic sparse backward transposes and coalesces it every step."""

    from torch.autograd import Function  # here: the module imports without the gnn extra

    class SymmetricProduct(Function):
        @staticmethod
        def forward(ctx, adjacency, x):
            ctx.adjacency = adjacency
            return adjacency @ x

        @staticmethod
        def backward(ctx, grad):
            return None, ctx.adjacency @ grad

    return SymmetricProduct.apply


class FastRPRecommender:
    """FastRP embeddings (``embeddings.train.fastrp``, the GDS default) of the training
    graph, ends ranked by dot product with the start's."""

    name = "FastRP"

    def __init__(self, dim: int = 64, seed: int = 7):
        self.dim, self.seed = dim, seed

    def fit(self, train: sp.csr_matrix) -> "FastRPRecommender":
        import torch
        from torch_geometric.data import HeteroData

        from identigraph.embeddings.train import fastrp

        coo = train.tocoo()
        graph = HeteroData()
        graph["start"].num_nodes, graph["end"].num_nodes = train.shape
        forward = torch.as_tensor(np.vstack([coo.row, coo.col]), dtype=torch.long)
        graph["start", "to", "end"].edge_index = forward
        graph["end", "back", "start"].edge_index = forward.flip(0)
        vectors = fastrp(graph, self.dim, self.seed)
        self.start_vectors, self.end_vectors = vectors["start"].numpy(), vectors["end"].numpy()
        return self

    def scores(self, starts: np.ndarray, train: sp.csr_matrix) -> np.ndarray:
        return self.start_vectors[starts] @ self.end_vectors.T


@dataclass
class TemporalReport:
    target: str
    split_time: str
    train_pairs: int
    test_pairs: int
    starts_evaluated: int
    k: int
    models: list[Evaluation]
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {"target": self.target, "split_time": self.split_time, "train_pairs": self.train_pairs,
                "test_pairs": self.test_pairs, "starts_evaluated": self.starts_evaluated, "k": self.k,
                "protocol": "train on pairs that began before split_time; rank ends for starts with history; "
                            "test = their new pairs after it with ends that had history; Recall@k = hits / "
                            "new pairs, NDCG@k with binary gains, means over starts",
                "models": {m.name: {"recall_at_k": round(m.recall, 4), "ndcg_at_k": round(m.ndcg, 4),
                                    "seconds": m.seconds, "settings": m.settings} for m in self.models},
                "seconds": self.seconds}


def recommenders(edges: pd.DataFrame, split: TemporalSplit, steps: int = LIGHTGCN_STEPS, dim: int = LIGHTGCN_DIM,
                 seed: int = 7, time_column: str = FIRST_TIME, say=lambda message: None):
    """(recommender, its settings) for every model the command compares, EASE's penalty chosen
    on the validation split; announced through ``say`` as each is handed out."""
    say("choosing EASE's penalty on the validation split")
    ease = choose_on_validation([EASE(penalty) for penalty in EASE_PENALTIES], validation_split(edges, split, time_column))
    for model, settings in ((MostPopular(), {}), (ItemKNN(), {"neighbours": 100}), (ease, {"penalty": ease.penalty}),
                            (FastRPRecommender(dim, seed), {"dim": dim}),
                            (LightGCN(dim=dim, steps=steps, seed=seed), {"dim": dim, "steps": steps, "layers": 2})):
        say(f"evaluating {model.name}")
        yield model, settings


def embed_temporal(tables_dir: Path, target: str, split_time: str, out_dir: Path, steps: int = LIGHTGCN_STEPS,
                   dim: int = LIGHTGCN_DIM, seed: int = 7, progress=None) -> TemporalReport:
    """``identigraph embed TABLES --target REL --split-time T``: every recommender on the
    temporal split, ``metrics.json``, and ``embeddings.parquet`` of LightGCN trained on all
    pairs (start and end nodes of the target, under their labels)."""
    started = time.perf_counter()
    say = progress or (lambda message: None)
    try:
        when = pd.Timestamp(split_time)
    except ValueError as error:
        raise TemporalSplitError(f"--split-time {split_time!r} is not a date or time (e.g. 2010-09-01)") from error
    edges = read_target(tables_dir, target)
    time_column = FIRST_TIME if FIRST_TIME in edges.columns else "first_at"
    edges = edges[edges["weight"] > 0] if "weight" in edges.columns else edges
    split = temporal_split(edges, when, time_column)
    models = [evaluate(model, split, settings=settings)
              for model, settings in recommenders(edges, split, steps, dim, seed, time_column, say)]
    report = TemporalReport(target, str(when), split.pairs_before, split.pairs_after, len(split.test), K, models)
    say("LightGCN on every pair, for the embeddings")
    model = model_of(tables_dir)
    start_label, end_label = model.edges[target].start, model.edges[target].end
    # Every node of the two labels gets a vector, so that `segment` and `score` find each one:
    # a node without a pair here (only cancelled lines, or none) gets zeros, not noise.
    if end_label == start_label:
        start_keys = end_keys = _label_keys(tables_dir, model, start_label, pd.concat([edges["start"], edges["end"]]))
    else:
        start_keys = _label_keys(tables_dir, model, start_label, edges["start"])
        end_keys = _label_keys(tables_dir, model, end_label, edges["end"])
    matrix = _pair_matrix(pd.Index(start_keys).get_indexer(edges["start"].astype(str)),
                          pd.Index(end_keys).get_indexer(edges["end"].astype(str)), (len(start_keys), len(end_keys)))
    final = LightGCN(dim=dim, steps=steps, seed=seed).fit(matrix)
    start_vectors = final.start_vectors * (np.diff(matrix.indptr) > 0)[:, None]
    end_vectors = final.end_vectors * (np.diff(matrix.tocsc().indptr) > 0)[:, None]
    if start_label == end_label:  # one row per node: its vector as a start, then as an end
        frames = [pd.DataFrame({"node_type": start_label, "node_id": start_keys,
                                "embedding": list(np.hstack([start_vectors, end_vectors]))})]
    else:
        frames = [pd.DataFrame({"node_type": start_label, "node_id": start_keys, "embedding": list(start_vectors)}),
                  pd.DataFrame({"node_type": end_label, "node_id": end_keys, "embedding": list(end_vectors)})]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pd.concat(frames, ignore_index=True).to_parquet(out_dir / "embeddings.parquet", index=False)
    report.seconds = round(time.perf_counter() - started, 2)
    (out_dir / "metrics.json").write_text(json.dumps(report.to_json(), indent=2))
    return report

