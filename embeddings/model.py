"""The encoder: GraphSAGE made heterogeneous with ``to_hetero``, and the dot-product link
decoder. GraphSAGE aggregates neighbours' features with learned weights, so a node unseen
in training (a new customer) is embedded from its features and edges without retraining."""
from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import SAGEConv, to_hetero


class SAGEEncoder(nn.Module):
    """Homogeneous template; ``to_hetero`` copies each layer per edge type."""

    def __init__(self, hidden: int, out: int, layers: int = 2, dropout: float = 0.1):
        super().__init__()
        self.convs = nn.ModuleList([SAGEConv((-1, -1), hidden) for _ in range(layers - 1)] + [SAGEConv((-1, -1), out)])
        self.dropout = dropout

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        for conv in self.convs[:-1]:
            x = conv(x, edge_index).relu()
            x = nn.functional.dropout(x, p=self.dropout, training=self.training)
        return self.convs[-1](x, edge_index)


class HeteroLinkModel(nn.Module):
    """Per-type input projection (features differ in width and meaning), the hetero SAGE
    encoder, and dot-product scores for (source, relation, target) pairs."""

    def __init__(self, metadata, input_dims: dict[str, int], hidden: int = 64, out: int = 64, layers: int = 2):
        super().__init__()
        self.project = nn.ModuleDict({node_type: nn.Linear(dim, hidden) for node_type, dim in input_dims.items()})
        self.encoder = to_hetero(SAGEEncoder(hidden, out, layers), metadata, aggr="sum")

    def forward(self, x_dict: dict[str, torch.Tensor], edge_index_dict) -> dict[str, torch.Tensor]:
        hidden = {node_type: self.project[node_type](x).relu() for node_type, x in x_dict.items()}
        return self.encoder(hidden, edge_index_dict)

    @staticmethod
    def score(z_dict: dict[str, torch.Tensor], edge_type: tuple[str, str, str], pairs: torch.Tensor) -> torch.Tensor:
        source, _, target = edge_type
        return (z_dict[source][pairs[0]] * z_dict[target][pairs[1]]).sum(-1)
