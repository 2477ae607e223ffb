"""A GNN node classifier for fraud, measured beside the gradient-boosted trees.

Heterogeneous GraphSAGE (PyG ``to_hetero``) over customers and the identifiers they hold
(devices, phones, e-mails, addresses; ``scoring.identity_graph``). Customers carry the same
feature matrix the trees see (label features from the fold's training labels only);
identifiers carry how many customers hold them. Trained full-batch per cross-validation
fold on the same folds as the trees, with the held-out customers' labels masked from the
loss, so its held-out scores compare with the trees' one for one.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch_geometric.data import HeteroData
from torch_geometric.nn import SAGEConv, to_hetero

from identigraph.embeddings.train import deterministic
from identigraph.scoring.features import CustomerFrame, feature_matrix
from identigraph.scoring.identity_graph import holders


class _SAGE(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.first = SAGEConv((-1, -1), hidden)
        self.second = SAGEConv((-1, -1), hidden)

    def forward(self, x, edge_index):
        x = nn.functional.leaky_relu(self.first(x, edge_index), 0.1)
        return nn.functional.leaky_relu(self.second(x, edge_index), 0.1)


def identity_hetero_data(frame: CustomerFrame, features: pd.DataFrame) -> HeteroData:
    values = features.to_numpy(dtype=np.float64)
    values = np.nan_to_num((values - np.nanmean(values, axis=0)) / (np.nanstd(values, axis=0) + 1e-9))
    data = HeteroData()
    data["customer"].x = torch.tensor(values, dtype=torch.float32)
    for kind, matrix in frame.graph.incidence.items():
        if matrix.shape[1] == 0:
            continue
        data[kind].x = torch.tensor(np.log1p(holders(matrix))[:, None], dtype=torch.float32)
        coo = matrix.tocoo()
        edge_index = torch.tensor(np.vstack([coo.row, coo.col]), dtype=torch.long)
        data["customer", "holds", kind].edge_index = edge_index
        data[kind, "held_by", "customer"].edge_index = edge_index.flip(0)
    return data


class FraudGNN(nn.Module):
    def __init__(self, metadata, hidden: int = 32):
        super().__init__()
        self.encoder = to_hetero(_SAGE(hidden), metadata, aggr="sum")
        self.head = nn.Linear(hidden, 1)

    def forward(self, data: HeteroData) -> torch.Tensor:
        return self.head(self.encoder(data.x_dict, data.edge_index_dict)["customer"]).squeeze(-1)


def gnn_oof_scores(frame: CustomerFrame, folds: np.ndarray, groups: tuple[str, ...], seed: int = 7,
                   epochs: int = 150, learning_rate: float = 0.01) -> np.ndarray:
    """Held-out fraud probability of every customer, one model per fold."""
    target = frame.known_fraud
    scores = np.zeros(len(target))
    with deterministic():
        for fold in np.unique(folds):
            train = folds != fold
            known = np.where(train, target, 0.0)
            data = identity_hetero_data(frame, feature_matrix(frame, known, groups))
            torch.manual_seed(seed)
            model = FraudGNN(data.metadata())
            with torch.no_grad():
                model(data)  # materialise the lazy layers
            optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate, weight_decay=1e-4)
            mask = torch.tensor(train)
            labels = torch.tensor(target, dtype=torch.float32)
            positives = float(labels[mask].sum())
            weight = torch.tensor(min((float(mask.sum()) - positives) / max(positives, 1.0), 100.0))
            for _ in range(epochs):
                model.train()
                optimiser.zero_grad()
                loss = nn.functional.binary_cross_entropy_with_logits(model(data)[mask], labels[mask], pos_weight=weight)
                loss.backward()
                optimiser.step()
            model.eval()
            with torch.no_grad():
                scores[~train] = torch.sigmoid(model(data)).numpy()[~train]
    return scores
