"""``identigraph score``: graph tables (+ embeddings, labels) -> ``risk.parquet`` and ``risk.json``.

Artifacts in the tables folder (or ``out``):
- ``risk.parquet``: ``customer_id``, ``risk_score`` (calibrated probability of confirmed
  fraud, or an anomaly rank in [0, 1] without labels), ``risk_rank`` (1 = riskiest; equal
  scores ordered by the model's uncalibrated score), ``risk_band`` (low, medium, high,
  critical), ``score_kind`` (``supervised`` or ``anomaly``), ``reason_codes`` (list),
  ``risk_reasons`` (list of sentences), ``label`` (``fraud``/``legit`` where known); when
  supervised also ``oof_score`` and ``baseline_oof_score``, the customer's score from the
  cross-validation fold that held it out (the model's and the no-graph baseline's, before
  calibration): what the evaluation and the report's curves use.
- ``risk.json``: what was trained on, the out-of-fold evaluation beside the no-graph
  baseline (against the truth when ``truth`` is given), calibration, band counts, seconds.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from identigraph.scoring.features import CustomerFrame, customer_frame
from identigraph.scoring.reasons import LOG_ODDS_CONTRIBUTION, MIN_CONTRIBUTION, contributions, log_odds, top_reasons
from identigraph.scoring.risk import (
    Comparison,
    RiskConfig,
    anomaly_groups,
    anomaly_rank,
    bands,
    compare_with_baseline,
    fit_anomaly_model,
    fit_risk_model,
)


@dataclass
class ScoreResult:
    path: Path
    supervised: bool
    customers: int
    band_counts: dict[str, int]
    comparison: Comparison | None
    seconds: float
    feature_groups: tuple[str, ...] = ()  # the groups the scoring model uses
    group_selection: dict = field(default_factory=dict)  # RiskModel.group_selection


def truth_for_customers(tables_dir: Path, customers: np.ndarray, truth_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(is_fraud, ring_member) per resolved customer from the generator's truth: a customer
    is fraudulent when any of its records belongs to a fraudulent true customer."""
    truth_dir = Path(truth_dir)
    records = pd.read_parquet(truth_dir / "records.parquet")
    people = pd.read_parquet(truth_dir / "customers.parquet").set_index("customer_id")
    key = records["source"].astype(str) + ":" + records["record_id"].astype(str)
    true_customer = pd.Series(records["customer_id"].to_numpy(), index=key.to_numpy())
    resolved = pd.read_parquet(Path(tables_dir) / "edges" / "RESOLVED_TO.parquet")
    person = resolved["start"].map(true_customer)
    frame = pd.DataFrame({"customer": resolved["end"].to_numpy(),
                          "fraud": person.map(people["is_fraud"]).fillna(False).astype(bool).to_numpy(),
                          "ring": person.map(people["fraud_type"]).eq("ring").to_numpy()})
    per_customer = frame.groupby("customer")[["fraud", "ring"]].max().reindex(customers).fillna(False)
    return per_customer["fraud"].to_numpy(float), per_customer["ring"].to_numpy(bool)


def score_customers(tables_dir: Path, out_dir: Path | None = None, embeddings_path: Path | None = None,
                    labels_file: Path | None = None, truth_dir: Path | None = None,
                    config: RiskConfig = RiskConfig(), supervised: bool | None = None,
                    frame: CustomerFrame | None = None, progress=None) -> ScoreResult:
    """Score every customer of the graph tables and write the artifacts.

    ``supervised=None`` trains when there are confirmed fraud labels and falls back to the
    anomaly score otherwise; ``embeddings_path=None`` leaves the embedding group out."""
    started = time.perf_counter()
    tables_dir = Path(tables_dir)
    out_dir = Path(out_dir or tables_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if embeddings_path is None:
        config = replace(config, groups=tuple(g for g in config.groups if g != "embedding"))
    frame = frame or customer_frame(tables_dir, embeddings_path, labels_file)
    if supervised is None:
        supervised = frame.known_fraud.sum() >= config.folds
    comparison = None
    groups, selection = tuple(config.groups), {}
    report: dict = {"customers": frame.graph.size, "confirmed_fraud": int(frame.known_fraud.sum()),
                    "confirmed_legit": int(frame.known_legit.sum()), "feature_groups": list(config.groups)}
    if supervised:
        model = fit_risk_model(frame, config, progress)
        groups, selection = model.groups, model.group_selection
        features = model.features
        score = model.predict(features)
        order_by = model.predict_raw(features)
        typical = features[frame.known_fraud == 0].median()
        # In log-odds of the trees' own probability: the calibrated one is a step function (a
        # change inside one step would read as no contribution), and a raw probability of
        # 0.003 moves by less than any fixed threshold on the probability scale.
        drops = contributions(features, lambda x: log_odds(model.predict_raw(x)), typical)
        threshold = LOG_ODDS_CONTRIBUTION
        truth = ring = None
        if truth_dir is not None:
            truth, ring = truth_for_customers(tables_dir, frame.customers, truth_dir)
        comparison, baseline_oof = compare_with_baseline(frame, model, truth, ring)
        held_out = {"oof_score": np.round(model.oof_raw, 6), "baseline_oof_score": np.round(baseline_oof, 6)}
        report.update(score_kind="supervised", model="HistGradientBoostingClassifier", folds=config.folds,
                      feature_groups=list(model.groups), group_selection=model.group_selection,
                      calibration=model.calibration, evaluation=comparison.to_json())
    else:
        held_out = {}
        features, forest = fit_anomaly_model(frame, config.seed)
        groups = anomaly_groups(frame)
        score = anomaly_rank(forest, features)
        order_by = score
        drops = contributions(features, lambda x: -forest.score_samples(x), features.median())
        threshold = MIN_CONTRIBUTION
        report.update(feature_groups=list(groups), score_kind="anomaly", model="IsolationForest (unsupervised; a rank, not a probability)")
    codes, texts = top_reasons(drops, features, min_contribution=threshold)
    band = bands(score, supervised)
    label = np.where(frame.known_fraud == 1, "fraud", np.where(frame.known_legit == 1, "legit", np.array(None, dtype=object)))
    # 1 = riskiest; ties (equal calibrated scores) ordered by the uncalibrated score, then by id.
    rank = np.lexsort((frame.customers, -order_by, -np.round(score, 6))).argsort() + 1
    risk = pd.DataFrame({"customer_id": frame.customers, "risk_score": np.round(score, 6), "risk_rank": rank,
                         "risk_band": band,
                         "score_kind": "supervised" if supervised else "anomaly", "reason_codes": codes,
                         "risk_reasons": texts, "label": label, **held_out})
    risk.to_parquet(out_dir / "risk.parquet", index=False)
    counts = {name: int((band == name).sum()) for name in ("critical", "high", "medium", "low")}
    seconds = round(time.perf_counter() - started, 2)
    report.update(bands=counts, seconds=seconds)
    (out_dir / "risk.json").write_text(json.dumps(report, indent=2))
    return ScoreResult(out_dir / "risk.parquet", supervised, frame.graph.size, counts, comparison, seconds,
                       groups, selection)
