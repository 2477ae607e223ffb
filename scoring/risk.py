"""Fraud-risk scores: supervised when fraud labels exist, an anomaly score otherwise.

Supervised: gradient-boosted trees (scikit-learn's ``HistGradientBoostingClassifier``) on
the feature groups of ``scoring.features``. Cross-validation folds keep every connected
identity component whole (``StratifiedGroupKFold`` on the component), so a fraud ring is
never split between training and held-out rows, and the label-derived features of each fold
see only that fold's training labels. The out-of-fold scores calibrate the probabilities
(isotonic regression, as scikit-learn's ``CalibratedClassifierCV(ensemble=False)`` does) and
are what the evaluation reports; the model that scores is then fitted on every label.

Optional groups (``RiskConfig.optional_groups``, the embedding by default) are kept only when
cross-validation says they help: the folds are run with and without each, and the group
stays when its out-of-fold average precision against the labels is higher. Sixty-four
embedding columns beside a few dozen confirmed frauds give the trees noise to split on; on
the tests' 2,000 customers they cost ring recall (0.61 -> 0.43 with the category-affinity
embeddings), while at 100k customers they are neutral. The choice and both APs are kept in
``RiskModel.group_selection`` and written to ``risk.json``.

Targets: confirmed fraud = 1, everything else = 0 (unlabelled customers are mostly genuine;
the uncaught fraudsters among them are what the score is for). The probability is therefore
"would be confirmed fraud", calibrated against the labels we have.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold

from identigraph.scoring.features import CustomerFrame, feature_matrix

FULL = ("behaviour", "structure", "identity", "labels", "embedding")
NO_GRAPH = ("behaviour",)
# The probability is of *confirmed* fraud, so it tops out near the share of fraudsters that
# investigations confirm (0.4-0.6 on the synthetic data), not at 1: the top band starts below 0.5.
BANDS = (("critical", 0.4), ("high", 0.15), ("medium", 0.03), ("low", 0.0))
# Anomaly scores are ranks, not probabilities: bands by share of customers instead.
ANOMALY_BANDS = (("critical", 0.99), ("high", 0.95), ("medium", 0.80), ("low", 0.0))


@dataclass(frozen=True)
class RiskConfig:
    seed: int = 7
    folds: int = 5
    max_iter: int = 200
    learning_rate: float = 0.08
    groups: tuple[str, ...] = FULL
    # Groups kept only where cross-validated AP against the labels is higher with them.
    optional_groups: tuple[str, ...] = ("embedding",)
    compare_gnn: bool = False  # also train a GNN node classifier on the same folds and report it

    def __post_init__(self):
        if self.folds < 2:
            raise ValueError("folds must be at least 2")
        unknown = (set(self.groups) | set(self.optional_groups)) - set(FULL)
        if unknown:
            raise ValueError(f"unknown feature groups {sorted(unknown)}; choose from {list(FULL)}")


@dataclass
class RankMetrics:
    roc_auc: float
    average_precision: float
    precision_at_1pct: float
    positives: int
    customers: int
    ring_recall_at_2pct: float | None = None  # ring members (truth) among the top 2%


@dataclass
class RiskModel:
    """A fitted scorer: ``predict`` maps a feature matrix to calibrated probabilities."""
    config: RiskConfig
    columns: list[str]
    classifier: HistGradientBoostingClassifier
    calibrator: IsotonicRegression
    oof_probability: np.ndarray  # calibrated out-of-fold probability of every customer
    oof_raw: np.ndarray  # the same before calibration: the ranking evaluations use (no isotonic ties)
    folds: np.ndarray  # fold of each customer in cross-validation
    features: pd.DataFrame  # what the final model was fitted on (every label known): what it scores
    calibration: dict = field(default_factory=dict)
    groups: tuple[str, ...] = ()  # the feature groups kept (config.groups less rejected optional ones)
    # Per optional group: out-of-fold AP against the labels with and without it, and whether it was kept.
    group_selection: dict = field(default_factory=dict)

    def predict_raw(self, features: pd.DataFrame) -> np.ndarray:
        """The trees' probability before calibration: strictly ordered where the calibrated
        one has steps (isotonic regression gives a whole stretch of the top one value)."""
        return self.classifier.predict_proba(features[self.columns])[:, 1]

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return self.calibrator.predict(self.predict_raw(features))


def _classifier(config: RiskConfig) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(max_iter=config.max_iter, learning_rate=config.learning_rate,
                                          max_leaf_nodes=31, l2_regularization=1.0, early_stopping=False,
                                          random_state=config.seed)


def fold_assignment(frame: CustomerFrame, target: np.ndarray, config: RiskConfig) -> np.ndarray:
    """Fold of each customer; every connected identity component lies in one fold."""
    folds = np.zeros(frame.graph.size, dtype=np.int64)
    splitter = StratifiedGroupKFold(n_splits=config.folds, shuffle=True, random_state=config.seed)
    for number, (_, held_out) in enumerate(splitter.split(np.zeros(len(target)), target, frame.graph.component)):
        folds[held_out] = number
    return folds


def _out_of_fold(frame: CustomerFrame, target: np.ndarray, folds: np.ndarray, groups: tuple[str, ...],
                 config: RiskConfig, progress=None, done: int = 0, total: int = 0) -> np.ndarray:
    """Uncalibrated score of every customer from the model of the fold that held it out."""
    raw_oof = np.zeros(len(target))
    for fold in range(config.folds):
        train = folds != fold
        known = np.where(train, target, 0.0)  # held-out labels never reach any feature
        features = feature_matrix(frame, known, groups)
        classifier = _classifier(config).fit(features[train], target[train])
        raw_oof[~train] = classifier.predict_proba(features[~train])[:, 1]
        if progress:
            progress(done + fold + 1, total)
    return raw_oof


def fit_risk_model(frame: CustomerFrame, config: RiskConfig = RiskConfig(), progress=None,
                   folds: np.ndarray | None = None) -> RiskModel:
    """``folds`` (fold number per customer) defaults to ``fold_assignment``."""
    target = frame.known_fraud
    if target.sum() < config.folds:
        raise ValueError(f"only {int(target.sum())} confirmed fraudsters: too few to train with {config.folds} folds; "
                         "score without labels (--unsupervised) or add labels")
    folds = fold_assignment(frame, target, config) if folds is None else folds
    optional = [group for group in config.optional_groups if group in config.groups]
    total = config.folds * (1 + len(optional)) + 1
    groups = tuple(config.groups)
    raw_oof = _out_of_fold(frame, target, folds, groups, config, progress, 0, total)
    selection = {}
    for number, group in enumerate(optional, start=1):
        without = tuple(g for g in groups if g != group)
        raw_without = _out_of_fold(frame, target, folds, without, config, progress, number * config.folds, total)
        ap_with = float(average_precision_score(target, raw_oof))
        ap_without = float(average_precision_score(target, raw_without))
        keep = ap_with > ap_without
        selection[group] = {"label_ap_with": round(ap_with, 4), "label_ap_without": round(ap_without, 4),
                            "kept": keep}
        if not keep:
            groups, raw_oof = without, raw_without
    calibrator = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw_oof, target)
    features = feature_matrix(frame, target, groups)
    classifier = _classifier(config).fit(features, target)
    if progress:
        progress(total, total)
    oof = calibrator.predict(raw_oof)
    calibration = {"brier_oof_vs_labels": float(brier_score_loss(target, oof)),
                   "mean_probability": float(oof.mean()), "label_rate": float(target.mean())}
    return RiskModel(config, list(features.columns), classifier, calibrator, oof, raw_oof, folds, features,
                     calibration, groups, selection)


def anomaly_groups(frame: CustomerFrame) -> tuple[str, ...]:
    """The label-free groups, with the embedding when it was read."""
    return ("behaviour", "structure", "identity") + (("embedding",) if frame.embedding is not None else ())


def fit_anomaly_model(frame: CustomerFrame, seed: int = 7) -> tuple[pd.DataFrame, IsolationForest]:
    """Unsupervised: an Isolation Forest on the label-free features (+ embeddings when read).
    Returns the features it saw and the forest; ``anomaly_rank`` turns its output into scores."""
    features = feature_matrix(frame, np.zeros(frame.graph.size), anomaly_groups(frame))
    return features, IsolationForest(n_estimators=200, random_state=seed).fit(features)


def anomaly_rank(forest: IsolationForest, features: pd.DataFrame) -> np.ndarray:
    """Rank in [0, 1], 1 = most anomalous. Not a probability."""
    return pd.Series(-forest.score_samples(features)).rank(pct=True).to_numpy()


def bands(scores: np.ndarray, supervised: bool) -> np.ndarray:
    table = BANDS if supervised else ANOMALY_BANDS
    out = np.full(len(scores), table[-1][0], dtype=object)
    for name, threshold in reversed(table[:-1]):
        out[scores >= threshold] = name
    return out


def rank_metrics(scores: np.ndarray, truth: np.ndarray, ring_member: np.ndarray | None = None) -> RankMetrics:
    """ROC-AUC, average precision, precision in the top 1% and ring recall in the top 2%;
    ties broken by customer order so that equal scores cannot flatter the top."""
    order = np.argsort(-scores, kind="stable")
    top1 = order[:max(1, int(round(0.01 * len(scores))))]
    metrics = RankMetrics(roc_auc=float(roc_auc_score(truth, scores)),
                          average_precision=float(average_precision_score(truth, scores)),
                          precision_at_1pct=float(truth[top1].mean()), positives=int(truth.sum()),
                          customers=len(truth))
    if ring_member is not None and ring_member.any():
        top2 = order[:max(1, int(round(0.02 * len(scores))))]
        metrics.ring_recall_at_2pct = float(ring_member[top2].sum() / ring_member.sum())
    return metrics


@dataclass
class Comparison:
    """The model beside the no-graph baseline, both out-of-fold on the same folds."""
    model: RankMetrics
    baseline: RankMetrics
    against: str  # "truth" or "labels"
    seconds: float
    gnn: RankMetrics | None = None  # the GNN node classifier, when compared
    # Which scorer is kept: the one with the higher held-out AP against the *labels* (the
    # truth is unknown in production). Scoring with the GNN is not built: "gnn" would say so.
    kept: str = "trees"
    label_ap: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def compare_with_baseline(frame: CustomerFrame, model: RiskModel, truth: np.ndarray | None,
                          ring_member: np.ndarray | None = None) -> tuple[Comparison, np.ndarray]:
    """Scores the no-graph baseline (behaviour only) with the model's folds and compares
    both against the truth when given, else against the labels. Returns the comparison and
    the baseline's out-of-fold scores."""
    started = time.perf_counter()
    target = frame.known_fraud
    baseline_config = RiskConfig(seed=model.config.seed, folds=model.config.folds, max_iter=model.config.max_iter,
                                 learning_rate=model.config.learning_rate, groups=NO_GRAPH)
    features = feature_matrix(frame, np.zeros(len(target)), NO_GRAPH)
    baseline_oof = np.zeros(len(target))
    for fold in range(model.config.folds):
        train = model.folds != fold
        classifier = _classifier(baseline_config).fit(features[train], target[train])
        baseline_oof[~train] = classifier.predict_proba(features[~train])[:, 1]
    reference = truth if truth is not None else target
    comparison = Comparison(rank_metrics(model.oof_raw, reference, ring_member),
                            rank_metrics(baseline_oof, reference, ring_member),
                            "truth" if truth is not None else "labels", 0.0)
    comparison.label_ap["trees"] = float(average_precision_score(target, model.oof_raw))
    if model.config.compare_gnn:
        from identigraph.scoring.gnn_classifier import gnn_oof_scores

        gnn_oof = gnn_oof_scores(frame, model.folds, model.groups, model.config.seed)
        comparison.gnn = rank_metrics(gnn_oof, reference, ring_member)
        comparison.label_ap["gnn"] = float(average_precision_score(target, gnn_oof))
        comparison.kept = max(comparison.label_ap, key=lambda name: comparison.label_ap[name])
    comparison.seconds = round(time.perf_counter() - started, 2)
    return comparison, baseline_oof
