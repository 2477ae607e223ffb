"""Self-supervised training by link prediction, evaluation on held-out edges, and the
FastRP baseline scored the same way in the same run.

Edges of ``purchased`` and ``used_device`` are split by PyG's ``RandomLinkSplit`` (reverse
edges follow their forward edge, so a held-out purchase is not visible backwards). The
model trains full-batch: pyg-lib and torch-sparse, which neighbour-sampling loaders need,
have no PyPI wheels; with pyg-lib installed, ``LinkNeighborLoader`` mini-batches are used.
"""
from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
import torch_geometric.transforms as T
from sklearn.metrics import roc_auc_score
from torch_geometric.data import HeteroData
from torch_geometric.utils import negative_sampling

from embeddings.data import REVERSE
from embeddings.model import HeteroLinkModel

PURCHASED = ("customer", "purchased", "product")
USED_DEVICE = ("customer", "used_device", "device")
SUPERVISED = (PURCHASED, USED_DEVICE)


@dataclass(frozen=True)
class TrainingConfig:
    dim: int = 64
    hidden: int = 64
    layers: int = 2
    epochs: int = 100
    learning_rate: float = 0.01
    seed: int = 7
    val_share: float = 0.05
    test_share: float = 0.10
    recall_k: int = 20

    def __post_init__(self):
        if self.dim < 2 or self.hidden < 2 or self.layers < 1 or self.epochs < 1:
            raise ValueError("dim and hidden must be at least 2, layers and epochs at least 1")
        if not 0 < self.test_share < 0.5 or not 0 <= self.val_share < 0.5:
            raise ValueError("test_share must be in (0, 0.5) and val_share in [0, 0.5)")


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


def has_pyg_lib() -> bool:
    try:
        import pyg_lib  # noqa: F401
    except ImportError:
        return False
    return True


def seed_everything(seed: int) -> None:
    """PyG's negative sampling draws from Python's ``random`` as well as torch's generator."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def split_edges(data: HeteroData, config: TrainingConfig) -> tuple[HeteroData, HeteroData, HeteroData]:
    seed_everything(config.seed)
    transform = T.RandomLinkSplit(num_val=config.val_share, num_test=config.test_share, is_undirected=False,
                                  edge_types=list(SUPERVISED), rev_edge_types=[REVERSE[e] for e in SUPERVISED],
                                  add_negative_train_samples=False, neg_sampling_ratio=1.0,
                                  # Supervise on edges the encoder does not see, as PyG's
                                  # link-prediction examples do: otherwise it learns to echo them.
                                  disjoint_train_ratio=0.3)
    return transform(data)


def _loss(model: HeteroLinkModel, z: dict[str, torch.Tensor], data: HeteroData) -> torch.Tensor:
    total = torch.zeros(())
    for edge_type in SUPERVISED:
        positive = data[edge_type].edge_label_index
        source, _, target = edge_type
        negative = negative_sampling(data[edge_type].edge_index, num_nodes=(data[source].num_nodes,
                                     data[target].num_nodes), num_neg_samples=positive.size(1))
        scores = torch.cat([model.score(z, edge_type, positive), model.score(z, edge_type, negative)])
        labels = torch.cat([torch.ones(positive.size(1)), torch.zeros(negative.size(1))])
        total = total + torch.nn.functional.binary_cross_entropy_with_logits(scores, labels)
    return total


def fit(data: HeteroData, config: TrainingConfig, progress=None) -> tuple[HeteroLinkModel, HeteroData, HeteroData, list[float]]:
    """Train on the training split; returns the model, the train and test splits and the loss curve."""
    train, _, test = split_edges(data, config)
    seed_everything(config.seed)
    model = HeteroLinkModel(data.metadata(), {t: data[t].num_features for t in data.node_types},
                            hidden=config.hidden, out=config.dim, layers=config.layers,
                            catalogue_sizes={"product": data["product"].num_nodes})
    with torch.no_grad():  # materialise the lazy layers
        model(train.x_dict, train.edge_index_dict)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    losses = []
    for epoch in range(config.epochs):
        model.train()
        optimiser.zero_grad()
        loss = _loss(model, model(train.x_dict, train.edge_index_dict), train)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
        if progress:
            progress(epoch + 1, losses[-1])
    model.eval()
    return model, train, test, losses


def link_metrics(z: dict[str, torch.Tensor], train: HeteroData, test: HeteroData, k: int) -> LinkMetrics:
    """ROC-AUC per relation on the held-out positives and as many sampled negatives, and
    Recall@k of held-out purchases among all products not already bought in training."""
    metrics = LinkMetrics(k=k)
    for edge_type in SUPERVISED:
        pairs, labels = test[edge_type].edge_label_index, test[edge_type].edge_label
        scores = HeteroLinkModel.score(z, edge_type, pairs).detach().numpy()
        metrics.auc[edge_type[1]] = float(roc_auc_score(labels.numpy(), scores))
    pairs, labels = test[PURCHASED].edge_label_index, test[PURCHASED].edge_label
    held_out = pairs[:, labels == 1]
    seen = train[PURCHASED].edge_index
    customers = torch.unique(held_out[0])
    products = z["product"].detach()
    hits, wanted = 0, 0
    n_products = products.size(0)
    held_keys = held_out[0] * n_products + held_out[1]
    for chunk in torch.split(customers, 4096):  # customers is sorted: rows by binary search
        scores = z["customer"][chunk].detach() @ products.T
        # Already bought in training: not a "next" purchase, never ranked.
        in_chunk = torch.isin(seen[0], chunk)
        scores[torch.searchsorted(chunk, seen[0][in_chunk]), seen[1][in_chunk]] = float("-inf")
        top = scores.topk(min(k, n_products), dim=1).indices
        top_keys = (chunk[:, None] * n_products + top).flatten()
        wanted_in_chunk = held_keys[torch.isin(held_out[0], chunk)]
        hits += int(torch.isin(wanted_in_chunk, top_keys).sum())
        wanted += len(wanted_in_chunk)
    metrics.recall_at_k = hits / wanted if wanted else 0.0
    return metrics


def fastrp(train: HeteroData, dim: int, seed: int, weights: tuple[float, ...] = (0.0, 1.0, 1.0)) -> dict[str, torch.Tensor]:
    """FastRP (Chen et al. 2019, the Neo4j GDS default): very sparse random projections
    averaged over 1..len(weights) hops of the training graph, mixed with ``weights``."""
    offsets, total = {}, 0
    for node_type in train.node_types:
        offsets[node_type] = total
        total += train[node_type].num_nodes
    rows, cols = [], []
    for (source, _, target), edge_index in train.edge_index_dict.items():
        rows.append(edge_index[0].numpy() + offsets[source])
        cols.append(edge_index[1].numpy() + offsets[target])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
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
    return {node_type: torch.tensor(embedding[offsets[node_type]:offsets[node_type] + train[node_type].num_nodes],
                                    dtype=torch.float32) for node_type in train.node_types}


def train_and_evaluate(data: HeteroData, config: TrainingConfig, progress=None) -> tuple[HeteroLinkModel, TrainingReport]:
    started = time.perf_counter()
    model, train, test, losses = fit(data, config, progress)
    with torch.no_grad():
        z = model(train.x_dict, train.edge_index_dict)
    seconds = time.perf_counter() - started
    gnn = link_metrics(z, train, test, config.recall_k)
    baseline = link_metrics(fastrp(train, config.dim, config.seed), train, test, config.recall_k)
    edges = sum(int(data[e].edge_index.size(1)) for e in SUPERVISED)
    return model, TrainingReport(gnn=gnn, baseline=baseline, epochs=config.epochs, seconds=round(seconds, 2),
                                 edges=edges, mini_batches=False, loss=[round(v, 5) for v in losses])
