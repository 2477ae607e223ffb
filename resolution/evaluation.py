"""Accuracy of a clustering against the truth: pairwise precision/recall/F1 and B-cubed."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ClusterMetrics:
    records: int
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    predicted_clusters: int
    true_clusters: int
    true_positive_pairs: int
    predicted_pairs: int
    true_pairs: int

    def as_dict(self) -> dict:
        return asdict(self)


def _pairs(sizes: np.ndarray) -> int:
    return int((sizes * (sizes - 1) // 2).sum())


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def evaluate_clusters(predicted: pd.Series, truth: pd.Series) -> ClusterMetrics:
    """``predicted`` and ``truth``: cluster label per record, aligned on the same index."""
    frame = pd.DataFrame({"p": predicted.to_numpy(), "t": truth.to_numpy()})
    cell = frame.groupby(["p", "t"]).size().to_numpy()
    p_sizes = frame.groupby("p").size()
    t_sizes = frame.groupby("t").size()
    tp, pred, true = _pairs(cell), _pairs(p_sizes.to_numpy()), _pairs(t_sizes.to_numpy())
    precision = tp / pred if pred else 1.0
    recall = tp / true if true else 1.0
    # B-cubed: per record, the share of its predicted cluster in its true cluster and back.
    joint = frame.groupby(["p", "t"])["p"].transform("size").to_numpy()
    bp = float(np.mean(joint / frame["p"].map(p_sizes).to_numpy()))
    br = float(np.mean(joint / frame["t"].map(t_sizes).to_numpy()))
    return ClusterMetrics(len(frame), precision, recall, _f1(precision, recall), bp, br, _f1(bp, br),
                          int(len(p_sizes)), int(len(t_sizes)), tp, pred, true)


def evaluate_entities(entities: pd.DataFrame, truth: pd.DataFrame, truth_id: str, truth_entity: str,
                      truth_source: str | None = None) -> ClusterMetrics:
    """Joins ``entities.parquet`` with a truth table on record id (and source when given).
    Records missing from the truth are an error, not silently ignored."""
    keys = ["record_id"] + (["source"] if truth_source else [])
    renamed = truth.rename(columns={truth_id: "record_id", truth_entity: "true_entity",
                                    **({truth_source: "source"} if truth_source else {})})
    renamed["record_id"] = renamed["record_id"].astype(str)
    joined = entities.assign(record_id=entities["record_id"].astype(str)).merge(
        renamed[keys + ["true_entity"]], on=keys, how="left")
    missing = joined["true_entity"].isna().sum()
    if missing:
        raise ValueError(f"{missing} of {len(joined)} resolved records have no row in the truth "
                         f"(joined on {keys}); check --truth-id/--truth-entity")
    return evaluate_clusters(joined["entity_id"], joined["true_entity"])
