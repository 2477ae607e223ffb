"""The embedded graph (node and edge tables) as networkx graphs, for graph algorithms without
a server: plain functions over the tables ``identigraph graph build`` wrote."""
from __future__ import annotations

from pathlib import Path

import networkx as nx
import pandas as pd

from identigraph.graph.model import EDGES


def read_edges(tables_dir: Path, edge_type: str) -> pd.DataFrame:
    path = Path(tables_dir) / "edges" / f"{edge_type}.parquet"
    return pd.read_parquet(path) if path.exists() else pd.DataFrame({"start": [], "end": []})


def bipartite_graph(tables_dir: Path, edge_types: tuple[str, ...]) -> nx.Graph:
    """Customers and the things they connect to; node names are ``(label, key)`` tuples."""
    graph = nx.Graph()
    for edge_type in edge_types:
        edge = EDGES[edge_type]
        frame = read_edges(tables_dir, edge_type)
        graph.add_edges_from(((edge.start, s), (edge.end, e)) for s, e in zip(frame["start"], frame["end"]))
    return graph


def shared_identifier_groups(tables_dir: Path, edge_types: tuple[str, ...] = ("USED_DEVICE", "HAS_PHONE"),
                             min_customers: int = 3, max_holders: int = 50) -> list[set[str]]:
    """Groups of customers joined through identifiers each shared by 2..``max_holders``
    customers (a public Wi-Fi device or a call-centre number would join everyone), largest
    first, with at least ``min_customers`` customers: fraud-ring and household candidates."""
    graph = bipartite_graph(tables_dir, edge_types)
    crowded = [n for n, degree in graph.degree() if n[0] != "Customer" and degree > max_holders]
    alone = [n for n, degree in graph.degree() if n[0] != "Customer" and degree < 2]
    graph.remove_nodes_from(crowded + alone)
    groups = []
    for component in nx.connected_components(graph):
        customers = {key for label, key in component if label == "Customer"}
        if len(customers) >= min_customers:
            groups.append(customers)
    return sorted(groups, key=lambda g: (-len(g), min(g)))
