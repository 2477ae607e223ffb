"""Customers joined by the identifiers they hold (devices, phones, e-mails, addresses), as a
sparse customer x identifier incidence matrix, and the plain functions risk features need
over it: holders per identifier, connected identity components, label-propagation
communities and neighbour fraud shares that never count a customer's own label.

An identifier held by more than ``max_holders`` customers (a shop's demo tablet, a call
centre's number) would join everyone; it is left out of the structure, as in
``graph.networkx_view.shared_identifier_groups``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from identigraph.graph.networkx_view import read_edges

# Identifier kinds: the edge table that links a customer to it.
IDENTIFIER_EDGES = {"device": "USED_DEVICE", "phone": "HAS_PHONE", "email": "HAS_EMAIL", "address": "HAS_ADDRESS"}


@dataclass
class IdentityGraph:
    customers: np.ndarray  # customer ids, row order of every matrix and feature
    incidence: dict[str, sp.csr_matrix]  # kind -> customers x identifiers of that kind (1 = holds it)
    identifiers: dict[str, np.ndarray]  # kind -> identifier keys, column order
    component: np.ndarray  # connected identity component of each customer
    max_holders: int

    @property
    def size(self) -> int:
        return len(self.customers)

    def all_incidence(self) -> sp.csr_matrix:
        return sp.hstack(list(self.incidence.values()), format="csr")

    @cached_property
    def adjacency(self) -> sp.csr_matrix:
        """Customer x customer, 1 where two customers share at least one identifier; zero diagonal.
        Built once: communities and every fold's label features use it."""
        incidence = self.all_incidence()
        shared = (incidence @ incidence.T).tocsr()
        shared.setdiag(0)
        shared.eliminate_zeros()
        shared.data[:] = 1.0
        return shared


def build_identity_graph(tables_dir: Path, customers: np.ndarray, max_holders: int = 50) -> IdentityGraph:
    position = pd.Series(np.arange(len(customers)), index=customers)
    incidence, identifiers = {}, {}
    for kind, edge_type in IDENTIFIER_EDGES.items():
        edges = read_edges(tables_dir, edge_type)
        rows = edges["start"].map(position)
        edges = edges.loc[rows.notna()]
        keys, columns = np.unique(edges["end"].astype(str).to_numpy(), return_inverse=True)
        matrix = sp.csr_matrix((np.ones(len(edges)), (rows.dropna().to_numpy(np.int64), columns)),
                               shape=(len(customers), len(keys)))
        matrix.data[:] = 1.0  # a customer holds an identifier once, whatever its record count
        holders = np.asarray(matrix.sum(axis=0)).ravel()
        keep = holders <= max_holders
        incidence[kind] = matrix[:, keep].tocsr()
        identifiers[kind] = keys[keep]
    everything = sp.hstack(list(incidence.values()), format="csr")
    n = len(customers)
    bipartite = sp.bmat([[None, everything], [everything.T, None]], format="csr")
    _, labels = connected_components(bipartite, directed=False)
    _, component = np.unique(labels[:n], return_inverse=True)
    return IdentityGraph(np.asarray(customers), incidence, identifiers, component, max_holders)


def holders(matrix: sp.csr_matrix) -> np.ndarray:
    """Customers holding each identifier (columns)."""
    return np.asarray(matrix.sum(axis=0)).ravel()


def row_max(matrix: sp.csr_matrix, values_per_entry: np.ndarray, empty: float = 0.0) -> np.ndarray:
    """Per row, the largest of ``values_per_entry`` (one value per stored entry of ``matrix``)."""
    out = np.full(matrix.shape[0], empty, dtype=float)
    counts = np.diff(matrix.indptr)
    has = counts > 0
    if has.any():
        starts = matrix.indptr[:-1][has]
        out[has] = np.maximum.reduceat(values_per_entry, starts)
    return out


def entry_rows(matrix: sp.csr_matrix) -> np.ndarray:
    return np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))


def most_shared(matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Per customer: how many customers hold its most shared identifier of this kind, and
    that identifier's column (-1 when it holds none)."""
    count = holders(matrix)[matrix.indices]
    best = row_max(matrix, count.astype(float))
    column = np.full(matrix.shape[0], -1, dtype=np.int64)
    rows = entry_rows(matrix)
    # The first entry per row reaching the row's maximum.
    hit = count == best[rows]
    first = np.unique(rows[hit], return_index=True)
    column[first[0]] = matrix.indices[hit][first[1]]
    return best, column


def other_known_fraud(matrix: sp.csr_matrix, known: np.ndarray, column: np.ndarray) -> np.ndarray:
    """Known fraudsters other than the customer among the holders of ``column`` (its chosen
    identifier); ``known`` is 1 for customers whose fraud label may be used, else 0."""
    per_identifier = np.asarray(matrix.T @ known).ravel()
    out = np.zeros(matrix.shape[0])
    has = column >= 0
    out[has] = per_identifier[column[has]] - known[has]
    return out


def distinct_values_per_identifier(matrix: sp.csr_matrix, values: pd.Series) -> np.ndarray:
    """Per customer, the most distinct ``values`` (e.g. surnames) among the holders of any
    one of its identifiers of this kind: a phone used under four surnames is a warning sign."""
    coo = matrix.tocoo()
    frame = pd.DataFrame({"identifier": coo.col, "value": values.to_numpy()[coo.row]}).dropna()
    distinct = frame.groupby("identifier")["value"].nunique()
    per_identifier = np.zeros(matrix.shape[1])
    per_identifier[distinct.index.to_numpy()] = distinct.to_numpy()
    return row_max(matrix, per_identifier[matrix.indices])


def group_sizes(groups: np.ndarray) -> np.ndarray:
    return np.bincount(groups)[groups]


def others_known_in_group(groups: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Known fraudsters in the customer's group, the customer itself left out."""
    return np.bincount(groups, weights=known)[groups] - known


def communities(graph: IdentityGraph) -> np.ndarray:
    """Label-propagation communities of the customer projection (networkx, semi-synchronous
    and deterministic); isolated customers are communities of one."""
    projection = nx.from_scipy_sparse_array(graph.adjacency)
    labels = np.arange(graph.size)
    for number, members in enumerate(nx.community.label_propagation_communities(projection)):
        labels[list(members)] = graph.size + number
    _, dense = np.unique(labels, return_inverse=True)
    return dense


def propagated_fraud(adjacency: sp.csr_matrix, known: np.ndarray, hops: int = 2, decay: float = 0.5) -> np.ndarray:
    """Neighbour fraud share by label propagation: the share of known fraud among a
    customer's neighbours, plus ``decay`` times that of their neighbours' neighbours (``hops``
    1 or 2). Two-step walks that come back to the customer are removed, so its own label
    never counts (this is what lets the feature be used on labelled training rows); longer
    walks could return through a triangle, hence no third hop."""
    if hops not in (1, 2):
        raise ValueError("hops must be 1 or 2")
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    transition = sp.diags(1.0 / np.maximum(degree, 1)) @ adjacency
    score = np.zeros(adjacency.shape[0])
    current = known.astype(float)
    weight = 1.0
    returning = transition.multiply(transition.T).sum(axis=1).A.ravel()  # P(i -> j -> i)
    for hop in range(hops):
        current = transition @ current
        if hop == 1:
            current = current - returning * known
        score += weight * current
        weight *= decay
    total = sum(decay ** h for h in range(hops))
    return score / total
