"""Self-supervised training by link prediction, evaluation on held-out edges, and the
FastRP baseline scored the same way in the same run.

Edges of ``purchased`` and ``used_device`` are split by PyG's ``RandomLinkSplit`` (reverse
edges follow their forward edge, so a held-out purchase is not visible backwards).

Two ways to train, chosen by ``TrainingConfig.batching``:
- full batch (``"full"``): every step runs the encoder over the whole training graph. Needs
  nothing beyond PyTorch and PyG, and is the default here: pyg-lib and torch-sparse, which
  neighbour sampling needs, have no PyPI wheels.
- mini-batches (``"neighbour"``): PyG's ``LinkNeighborLoader`` samples ``fanout`` neighbours
  per hop around a batch of supervision edges and their negatives, so memory is bounded
  by the batch, not the graph. ``"auto"`` (the default) takes it when pyg-lib or
  torch-sparse is installed.
Either way the embeddings are then computed full-batch (inference needs no sampling).
"""
from __future__ import annotations

import copy
import random
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial

import numpy as np
import scipy.sparse as sp
import torch
import torch_geometric.transforms as T
from sklearn.metrics import roc_auc_score
from torch_geometric.data import HeteroData
from torch_geometric.utils import to_torch_csr_tensor

from identigraph.embeddings.data import EDGE_TABLES, REVERSE, FeatureRecipe, GraphFrames, graph_structure, node_features
from identigraph.embeddings.model import HeteroLinkModel

PURCHASED = ("customer", "purchased", "product")
USED_DEVICE = ("customer", "used_device", "device")
SUPERVISED = (PURCHASED, USED_DEVICE)
# The end of a pair (0 = source, 1 = target) a negative example replaces, by the question
# each relation answers: which product will this customer buy (1: keep the customer, draw a
# product), whose device is this (0: keep the device, draw a customer). Drawing both ends at random instead lets a
# model win on degree alone: a device with no known customer exists only because of the
# held-out edge, and a random device hardly ever looks like that.
CORRUPTED_END = {PURCHASED: 1, USED_DEVICE: 0}


BATCHING = ("auto", "full", "neighbour")


def neighbour_sampling_available() -> bool:
    """PyG's neighbour sampler runs on pyg-lib or torch-sparse; neither is on PyPI."""
    import torch_geometric.typing

    return bool(torch_geometric.typing.WITH_PYG_LIB or torch_geometric.typing.WITH_TORCH_SPARSE)


@dataclass(frozen=True)
class TrainingConfig:
    dim: int = 64
    # 32 hidden units, not 64: on 50k customers (with the category-affinity features) held-out
    # purchase AUC 0.850 vs 0.844, device 0.878 vs 0.879, Recall@20 0.230 vs 0.221, in 44 s
    # instead of 63 s. 16 lost (0.826). docs/benchmarks.md has the runs.
    hidden: int = 32
    # Two SAGE layers, 100 epochs at 0.005. At 0.01 and 0.02 purchases fell (0.806, 0.803
    # before the affinity features). One layer did about as well on purchases (0.856 in 150
    # epochs) but lost planted communities (test_planted_communities_are_recovered), and both
    # overfit with more epochs (one layer, 300: 0.846 / 0.838).
    layers: int = 2
    epochs: int = 100
    learning_rate: float = 0.005
    seed: int = 7
    val_share: float = 0.05
    test_share: float = 0.10
    recall_k: int = 20
    target_bias: bool = True  # a learned bias column for products and devices (HeteroLinkModel)
    batching: str = "auto"  # "full", "neighbour" (LinkNeighborLoader) or "auto" (neighbour when it can)
    batch_size: int = 2048  # supervision edges per mini-batch
    fanout: int = 10  # neighbours sampled per node, relation and hop
    # A mini-batch epoch takes (supervision edges / batch_size) optimiser steps where a
    # full-batch one takes one, so far fewer epochs are needed.
    mini_batch_epochs: int = 10

    def __post_init__(self):
        if self.dim < 2 or self.hidden < 2 or self.layers < 1 or self.epochs < 1 or self.mini_batch_epochs < 1:
            raise ValueError("dim and hidden must be at least 2, layers and epochs at least 1")
        if self.batching not in BATCHING:
            raise ValueError(f"batching must be one of {', '.join(BATCHING)}, got {self.batching!r}")
        if self.batching == "neighbour" and not neighbour_sampling_available():
            raise ValueError("batching='neighbour' needs pyg-lib or torch-sparse (PyG's neighbour sampler); "
                             "install one from https://data.pyg.org/whl/ or use batching='full'")
        if self.batch_size < 1 or self.fanout < 1:
            raise ValueError("batch_size and fanout must be at least 1")
        if not 0 < self.test_share < 0.5 or not 0 <= self.val_share < 0.5:
            raise ValueError("test_share must be in (0, 0.5) and val_share in [0, 0.5)")

    @property
    def mini_batches(self) -> bool:
        """Whether training samples neighbourhoods (resolves ``"auto"``)."""
        return self.batching == "neighbour" or (self.batching == "auto" and neighbour_sampling_available())

    @property
    def epoch_count(self) -> int:
        return self.mini_batch_epochs if self.mini_batches else self.epochs


@dataclass
class LinkMetrics:
    auc: dict[str, float] = field(default_factory=dict)  # relation -> ROC-AUC on held-out edges
    recall_at_k: float = 0.0  # held-out purchases found in each customer's top k products
    k: int = 20


@dataclass
class TrainingReport:
    gnn: LinkMetrics
    baseline: LinkMetrics
    epochs: int
    seconds: float
    edges: int
    mini_batches: bool
    loss: list[float] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def link_targets(config: TrainingConfig) -> tuple[str, ...]:
    return tuple(target for _, _, target in SUPERVISED) if config.target_bias else ()


@contextmanager
def deterministic():
    """PyTorch's deterministic kernels while training and embedding, then the caller's
    setting back. Without them, neighbour sums on several CPU threads vary in order, and
    100 epochs amplify that float noise into vectors 0.5% apart between runs with one
    seed; with them, runs are identical at no measured cost (17.7 s vs 17.2 s, 20 epochs
    on 50k customers)."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


def seed_everything(seed: int) -> None:
    """PyG's negative sampling draws from Python's ``random`` as well as torch's generator."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def split_edges(data: HeteroData, config: TrainingConfig) -> tuple[HeteroData, HeteroData, HeteroData]:
    seed_everything(config.seed)
    transform = T.RandomLinkSplit(num_val=config.val_share, num_test=config.test_share, is_undirected=False,
                                  edge_types=list(SUPERVISED), rev_edge_types=[REVERSE[e] for e in SUPERVISED],
                                  add_negative_train_samples=False, neg_sampling_ratio=0.0,  # negatives: corrupt()
                                  # Supervise on edges the encoder does not see, as PyG's
                                  # link-prediction examples do: otherwise it learns to echo them.
                                  disjoint_train_ratio=0.3)
    return transform(data)


def corrupt(positive: torch.Tensor, edge_type: tuple[str, str, str], data: HeteroData,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """One negative per positive pair: ``CORRUPTED_END`` replaced by a uniformly drawn node.
    No rejection of true edges (PyG's negative_sampling has it): at under 0.1% density it
    changes nothing and cost a fifth of each epoch."""
    end = CORRUPTED_END[edge_type]
    negative = positive.clone()
    negative[end] = torch.randint(0, data[edge_type[0 if end == 0 else 2]].num_nodes, (positive.size(1),),
                                  generator=generator)
    return negative


def _link_loss(positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the positive pairs' scores against 1, the negatives' against 0."""
    return torch.nn.functional.binary_cross_entropy_with_logits(
        torch.cat([positive, negative]), torch.cat([torch.ones_like(positive), torch.zeros_like(negative)]))


def _loss(model: HeteroLinkModel, z: dict[str, torch.Tensor], data: HeteroData) -> torch.Tensor:
    total = torch.zeros(())
    for edge_type in SUPERVISED:
        positive = data[edge_type].edge_label_index
        negative = corrupt(positive, edge_type, data)
        total = total + _link_loss(model.score(z, edge_type, positive), model.score(z, edge_type, negative))
    return total


def csr_adjacency(data: HeteroData) -> dict[tuple[str, str, str], torch.Tensor]:
    """Each relation's transposed adjacency (targets x sources) as a torch CSR tensor, which
    SAGEConv aggregates with one sparse matrix product instead of a scatter over edges: the
    same embeddings (to float rounding), 10% less time per full-batch epoch on 1.2M edges,
    deterministic kernels kept."""
    with warnings.catch_warnings():
        # PyTorch's notes that CSR is "beta" and that it skips invariant checks: the indices
        # come from our own edge_index, so there is nothing for a user to act on.
        warnings.filterwarnings("ignore", message="Sparse (CSR tensor support|invariant checks)")
        return {edge_type: to_torch_csr_tensor(data[edge_type].edge_index.flip(0),
                                               size=(data[edge_type[2]].num_nodes, data[edge_type[0]].num_nodes))
                for edge_type in data.edge_types}


def fit(train: HeteroData, config: TrainingConfig, progress=None) -> tuple[HeteroLinkModel, list[float]]:
    """Train on the training split (full-batch or on sampled neighbourhoods, as
    ``config.mini_batches`` says); returns the model and the loss per epoch."""
    seed_everything(config.seed)
    model = HeteroLinkModel(train.metadata(), {t: train[t].num_features for t in train.node_types},
                            hidden=config.hidden, out=config.dim, layers=config.layers,
                            catalogue_sizes={"product": train["product"].num_nodes},
                            bias_types=link_targets(config))
    adjacency = csr_adjacency(train)
    with torch.no_grad():  # materialise the lazy layers
        model(train.x_dict, adjacency)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    if config.mini_batches:
        loaders = neighbour_loaders(train, config)  # built once, reshuffled by every epoch
        step = partial(_mini_batch_epoch, loaders=loaders)
    else:
        step = partial(_full_batch_epoch, train=train, adjacency=adjacency)
    losses = []
    for epoch in range(config.epoch_count):
        model.train()
        losses.append(step(model, optimiser))
        if progress:
            progress(epoch + 1, losses[-1])
    model.eval()
    return model, losses


def _full_batch_epoch(model, optimiser, train: HeteroData, adjacency) -> float:
    optimiser.zero_grad()
    loss = _loss(model, model(train.x_dict, adjacency), train)
    loss.backward()
    optimiser.step()
    return loss.item()


# Each relation's mini-batches come from a loader over the edge type whose destination is the
# end ``corrupt`` replaces: PyG's "triplet" negatives draw one destination per source, so a
# purchase keeps its customer and draws a product, a device use keeps its device and draws
# a customer, as in full-batch training and in the evaluation.
LOADER_EDGE = {PURCHASED: PURCHASED, USED_DEVICE: REVERSE[USED_DEVICE]}


def neighbour_loaders(train: HeteroData, config: TrainingConfig) -> dict:
    """One ``LinkNeighborLoader`` per supervised relation over the training split."""
    from torch_geometric.loader import LinkNeighborLoader

    # The loader slices every node attribute by the sampled nodes; the string ids cannot be
    # (and are not needed): a shallow copy without them, tensors shared.
    sampled = copy.copy(train)
    for node_type in sampled.node_types:
        if "node_id" in sampled[node_type]:
            del sampled[node_type].node_id
    loaders = {}
    for relation, edge_type in LOADER_EDGE.items():
        supervision = train[relation].edge_label_index
        if edge_type != relation:
            supervision = supervision.flip(0)
        loaders[relation] = LinkNeighborLoader(
            sampled, num_neighbors=[config.fanout] * config.layers, edge_label_index=(edge_type, supervision),
            neg_sampling={"mode": "triplet", "amount": 1}, batch_size=config.batch_size, shuffle=True)
    return loaders


def _mini_batch_epoch(model, optimiser, loaders: dict) -> float:
    """One pass over every supervision edge, the relations' batches taken in turn."""
    total, batches = 0.0, 0
    iterators = {relation: iter(loader) for relation, loader in loaders.items()}
    while iterators:
        for relation in list(iterators):
            batch = next(iterators[relation], None)
            if batch is None:
                del iterators[relation]
                continue
            edge_type = LOADER_EDGE[relation]
            source, _, target = edge_type
            optimiser.zero_grad()
            z = model(batch.x_dict, batch.edge_index_dict, {"product": batch["product"].n_id})
            anchor = batch[source].src_index
            positive = model.score(z, edge_type, torch.stack([anchor, batch[target].dst_pos_index]))
            negative = model.score(z, edge_type, torch.stack([anchor, batch[target].dst_neg_index.view(-1)]))
            loss = _link_loss(positive, negative)
            loss.backward()
            optimiser.step()
            total += loss.item()
            batches += 1
    return total / max(batches, 1)


def known_edge_frames(frames: GraphFrames, data: HeteroData, known: HeteroData) -> GraphFrames:
    """``frames`` with only the purchases and device uses that ``known`` (a split) holds.

    Node features count orders, spend, devices, customers per device…: computed from every
    edge they would tell the model about held-out edges (a customer whose only device edge
    is held out would still say "one device"). Features for training and evaluation are
    computed from the known edges only."""
    edges = dict(frames.edges)
    for edge_type, table in EDGE_TABLES.items():
        width = data[edge_type[2]].num_nodes
        every = data[edge_type].edge_index
        kept = known[edge_type].edge_index
        mask = np.isin((every[0] * width + every[1]).numpy(), (kept[0] * width + kept[1]).numpy())
        edges[table] = frames.edges[table].loc[mask].reset_index(drop=True)
    return GraphFrames(frames.nodes, edges, frames.records, frames.resolved_to)


def link_metrics(z: dict[str, torch.Tensor], test: HeteroData, k: int) -> LinkMetrics:
    """ROC-AUC per relation on the held-out positives and one negative each (``corrupt``),
    and Recall@k of held-out purchases among all products not already known to be bought.
    ``z`` comes from ``test.edge_index_dict``: every edge known before the test (training
    and validation), as PyG's ``RandomLinkSplit`` lays the test split out."""
    metrics = LinkMetrics(k=k)
    generator = torch.Generator().manual_seed(0)  # the same negatives for every model scored
    for edge_type in SUPERVISED:
        positive = test[edge_type].edge_label_index[:, test[edge_type].edge_label == 1]
        pairs = torch.cat([positive, corrupt(positive, edge_type, test, generator)], dim=1)
        labels = np.r_[np.ones(positive.size(1)), np.zeros(positive.size(1))]
        scores = HeteroLinkModel.score(z, edge_type, pairs).detach().numpy()
        metrics.auc[edge_type[1]] = float(roc_auc_score(labels, scores))
    held_out = test[PURCHASED].edge_label_index[:, test[PURCHASED].edge_label == 1]
    seen = test[PURCHASED].edge_index
    customers = torch.unique(held_out[0])
    products = z["product"].detach()
    hits, wanted = 0, 0
    n_products = products.size(0)
    held_keys = held_out[0] * n_products + held_out[1]
    for chunk in torch.split(customers, 4096):  # customers is sorted: rows by binary search
        logits = z["customer"][chunk].detach() @ products.T
        # Already known to be bought: not a "next" purchase, never ranked.
        in_chunk = torch.isin(seen[0], chunk)
        logits[torch.searchsorted(chunk, seen[0][in_chunk]), seen[1][in_chunk]] = float("-inf")
        top = logits.topk(min(k, n_products), dim=1).indices
        top_keys = (chunk[:, None] * n_products + top).flatten()
        wanted_in_chunk = held_keys[torch.isin(held_out[0], chunk)]
        hits += int(torch.isin(wanted_in_chunk, top_keys).sum())
        wanted += len(wanted_in_chunk)
    metrics.recall_at_k = hits / wanted if wanted else 0.0
    return metrics


def fastrp(graph: HeteroData, dim: int, seed: int, weights: tuple[float, ...] = (0.0, 1.0, 1.0)) -> dict[str, torch.Tensor]:
    """FastRP (Chen et al. 2019, the Neo4j GDS default): very sparse random projections
    averaged over 1..len(weights) hops of ``graph``, mixed with ``weights``."""
    offsets, total = {}, 0
    for node_type in graph.node_types:
        offsets[node_type] = total
        total += graph[node_type].num_nodes
    row_parts, col_parts = [], []
    for (source, _, target), edge_index in graph.edge_index_dict.items():
        row_parts.append(edge_index[0].numpy() + offsets[source])
        col_parts.append(edge_index[1].numpy() + offsets[target])
    rows, cols = np.concatenate(row_parts), np.concatenate(col_parts)
    adjacency = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(total, total))
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    transition = sp.diags(1.0 / np.maximum(degree, 1)) @ adjacency
    rng = np.random.default_rng(seed)
    s = 3.0  # entries +-sqrt(s) with probability 1/(2s) each, else 0
    projection = rng.choice([np.sqrt(s), 0.0, -np.sqrt(s)], size=(total, dim), p=[1 / (2 * s), 1 - 1 / s, 1 / (2 * s)])
    embedding, current = np.zeros((total, dim)), projection
    for weight in weights:
        current = transition @ current
        norms = np.linalg.norm(current, axis=1, keepdims=True)
        embedding += weight * current / np.maximum(norms, 1e-12)
    return {node_type: torch.tensor(embedding[offsets[node_type]:offsets[node_type] + graph[node_type].num_nodes],
                                    dtype=torch.float32) for node_type in graph.node_types}


def train_and_evaluate(frames: GraphFrames, config: TrainingConfig,
                       progress=None) -> tuple[HeteroLinkModel, TrainingReport, FeatureRecipe]:
    """Split the edges, train on the training split and evaluate on the held-out edges beside
    FastRP. Node features come from the edges each split's encoder sees (never a held-out
    one); the recipe returned (fitted on the training split) scales every later use."""
    with deterministic():
        return _train_and_evaluate(frames, config, progress)


def _train_and_evaluate(frames: GraphFrames, config: TrainingConfig,
                        progress=None) -> tuple[HeteroLinkModel, TrainingReport, FeatureRecipe]:
    started = time.perf_counter()
    data = graph_structure(frames)
    train, validation, test = split_edges(data, config)
    # Each split's features from the edges its encoder sees, so that training positives
    # include the same cold ends (a device whose only edge is the one to predict) as the test.
    features, recipe = node_features(known_edge_frames(frames, data, train))
    for split in (train, validation):
        for node_type, x in features.items():
            split[node_type].x = x
    features, _ = node_features(known_edge_frames(frames, data, test), recipe)
    for node_type, x in features.items():
        test[node_type].x = x
    model, losses = fit(train, config, progress)
    with torch.no_grad():
        # Embed from every edge known before the test, the supervision-only training edges
        # included: what the model sees in use. FastRP gets the same graph.
        z = model(test.x_dict, test.edge_index_dict)
    seconds = time.perf_counter() - started
    gnn = link_metrics(z, test, config.recall_k)
    baseline = link_metrics(fastrp(test, config.dim, config.seed), test, config.recall_k)
    edges = sum(int(data[e].edge_index.size(1)) for e in SUPERVISED)
    return model, TrainingReport(gnn=gnn, baseline=baseline, epochs=config.epoch_count, seconds=round(seconds, 2),
                                 edges=edges, mini_batches=config.mini_batches,
                                 loss=[round(v, 5) for v in losses]), recipe
