"""The highest held-out purchase AUC any link predictor can reach on the synthetic data.

    python benchmarks/purchase_ceiling.py TABLES_DIR

The generator draws each order from a known model (``synthetic.events.make_orders``): two
favourite categories per customer (drawn with replacement from the non-risky ones), an
exploring share of orders in a uniform category, a busting-out fraudster's share in a risky
one, Zipf sales within a category and half of the orders kept in the customer's brand line.
A customer's favourites and brand line are hidden; only the purchases are seen. The Bayes
posterior predictive under that exact model, the generator's numbers included, is the best
scorer there is for "which product will this customer buy next" against a uniformly drawn
product (it ranks by the likelihood ratio), so its AUC on the embeddings' held-out split is
a ceiling for the GNN, FastRP and any other model that learns from the same purchases.

It scores the same split and the same negatives as ``embeddings.train.link_metrics``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from identigraph.embeddings.data import GraphFrames, graph_structure, read_graph_frames  # noqa: E402
from identigraph.embeddings.train import PURCHASED, TrainingConfig, corrupt, split_edges  # noqa: E402
from identigraph.synthetic.config import GeneratorConfig  # noqa: E402
from identigraph.synthetic.events import (  # noqa: E402
    BRAND_LINES,
    BRAND_LOYALTY,
    CATEGORIES,
    EXPLORE_SHARE,
    FAVOURITE_CATEGORIES,
    FRAUD_RISKY_SHARE,
)
from identigraph.synthetic.fraud import CULTIVATING_SHARE, RING_SHARE  # noqa: E402


def product_probabilities(products) -> np.ndarray:
    """P(product | hidden state) for every product (rows, in ``products``' order) and every
    state: (favourite pair, brand line) for ordinary customers, then the same for fraudsters
    busting out. Columns are equally likely a priori within each half."""
    if FAVOURITE_CATEGORIES != 2:
        raise NotImplementedError("the ceiling enumerates favourite pairs")
    names = list(CATEGORIES)
    risky = np.array([CATEGORIES[k][1] for k in names])
    category = products["category"].map({k: i for i, k in enumerate(names)}).to_numpy()
    # The catalogue's order within a category is its Zipf rank; product ids follow it.
    rank = products.assign(_row=np.arange(len(products))).sort_values("product_id") \
        .groupby("category").cumcount().sort_index().to_numpy()
    line = rank % BRAND_LINES
    zipf = 1.0 / (rank + 1)
    share_in_category = zipf / np.bincount(category, weights=zipf)[category]
    in_line = np.zeros(len(products))
    for k in range(len(names)):
        for b in range(BRAND_LINES):
            chosen = (category == k) & (line == b)
            in_line[chosen] = zipf[chosen] / zipf[chosen].sum()
    safe = np.flatnonzero(~risky)
    risky_uniform = risky / risky.sum()
    columns = []
    for fraud in (False, True):
        for first in safe:
            for second in safe:
                favourite = np.zeros(len(names))
                favourite[first] += 0.5
                favourite[second] += 0.5
                per_category = (1 - EXPLORE_SHARE) * favourite + EXPLORE_SHARE / len(names)
                if fraud:
                    per_category = (1 - FRAUD_RISKY_SHARE) * per_category + FRAUD_RISKY_SHARE * risky_uniform
                for b in range(BRAND_LINES):
                    within = (1 - BRAND_LOYALTY) * share_in_category + BRAND_LOYALTY * (line == b) * in_line
                    columns.append(per_category[category] * within)
    return np.stack(columns, axis=1)


def predictive(posterior: np.ndarray, probability: np.ndarray, customer: np.ndarray, product: np.ndarray,
               chunk: int = 20_000) -> np.ndarray:
    """P(product | customer's purchases) per pair, in chunks: a row per pair of the two
    (pairs x states) matrices is gigabytes at 170k customers."""
    return np.concatenate([np.einsum("ij,ij->i", posterior[customer[i:i + chunk]], probability[product[i:i + chunk]])
                           for i in range(0, len(customer), chunk)] or [np.zeros(0)])


def ceiling_auc(frames: GraphFrames, config: TrainingConfig | None = None,
                fraud_rate: float = GeneratorConfig(customers=1).fraud_rate) -> float:
    """Held-out purchase AUC of the Bayes posterior predictive on ``TrainingConfig``'s split."""
    config = config or TrainingConfig()
    data = graph_structure(frames)
    _, _, test = split_edges(data, config)
    products = frames.nodes["Product"].reset_index(drop=True)
    probability = product_probabilities(products)
    states = probability.shape[1] // 2
    # Busting-out fraudsters: the lone ones and the ring members no longer cultivating.
    busting = fraud_rate * (1 - RING_SHARE * CULTIVATING_SHARE)
    log_prior = np.r_[np.full(states, np.log((1 - busting) / states)), np.full(states, np.log(busting / states))]

    n_customers, n_products = data["customer"].num_nodes, data["product"].num_nodes
    every = data[PURCHASED].edge_index.numpy()
    known = test[PURCHASED].edge_index.numpy()
    is_known = np.isin(every[0] * n_products + every[1], known[0] * n_products + known[1])
    orders = frames.edges["PURCHASED"]["orders"].to_numpy(dtype=float)[is_known]
    counts = sp.csr_matrix((orders, (every[0][is_known], every[1][is_known])), shape=(n_customers, n_products))
    log_posterior = counts @ np.log(probability) + log_prior
    posterior = np.exp(log_posterior - log_posterior.max(axis=1, keepdims=True))
    posterior /= posterior.sum(axis=1, keepdims=True)

    # A held-out purchase is a product the customer is not known to have bought: the
    # predictive is renormalised over those, and a known product scores 0.
    bought_before = np.zeros(n_customers)
    np.add.at(bought_before, known[0], predictive(posterior, probability, known[0], known[1]))
    known_keys = np.unique(known[0] * n_products + known[1])

    def score(pairs: torch.Tensor) -> np.ndarray:
        customer, product = pairs[0].numpy(), pairs[1].numpy()
        value = predictive(posterior, probability, customer, product) / (1 - bought_before[customer])
        value[np.isin(customer * n_products + product, known_keys)] = 0.0
        return value

    positive = test[PURCHASED].edge_label_index[:, test[PURCHASED].edge_label == 1]
    negative = corrupt(positive, PURCHASED, test, torch.Generator().manual_seed(0))  # link_metrics' negatives
    labels = np.r_[np.ones(positive.size(1)), np.zeros(negative.size(1))]
    return float(roc_auc_score(labels, np.r_[score(positive), score(negative)]))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    print(f"Bayes ceiling of held-out purchase AUC: {ceiling_auc(read_graph_frames(Path(sys.argv[1]))):.4f}")
