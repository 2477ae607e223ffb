"""Fellegi–Sunter scoring with parameters estimated without labels.

- u (chance a level occurs between two *different* people) first from random record pairs,
  which are almost all non-matches;
- then m (chance of the level between two records of the *same* person), u and the match
  share lambda by EM on the blocked candidate pairs, starting from that u. Only candidate
  pairs are ever scored, and blocked non-matches (people of one household sharing surname,
  address and phone) agree far more often than random pairs do: with u held at its
  random-pair value EM explains them as matches and over-merges;
- EM runs over distinct comparison patterns weighted by their counts, not over pairs;
- exact agreement on term-frequency columns is re-weighted by how common the value is:
  sharing "Smith" is weaker evidence than sharing "Featherstonehaugh";
- a value of a phone, e-mail or identifier held by more than ``shared_value_limit``
  records (a household line, a junk value) gives no evidence at all.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from resolution.comparisons import NULL, Comparison
from resolution.encoding import EncodedRecords

SHARED_VALUE_COLUMNS = ("phone", "email", "identifier")
# Both given name and date of birth present and clearly different: not the same person,
# however much household evidence (address, phone, surname) they share.
DISTINCT_PERSON_COMPARISONS = ("first_name", "dob")
DISTINCT_PERSON_WEIGHT = -30.0
M_FLOOR = 1e-3
U_FLOOR = 1e-6
MIN_LEVEL_SUPPORT = 10


@dataclass
class FellegiSunterModel:
    comparisons: list[str]
    levels: list[list[str]]
    m: list[list[float]]
    u: list[list[float]]
    lambda_: float = 0.1
    tf_comparisons: list[str] = field(default_factory=list)
    # u of the exact level among random pairs: the average chance two people share a value,
    # which term-frequency adjustments compare each value's own frequency with.
    u_random_exact: list[float] = field(default_factory=list)
    pairs_trained: int = 0
    iterations: int = 0
    converged: bool = False

    def weights(self) -> list[np.ndarray]:
        """log2(m/u) per level. A partial agreement never weighs less than clear
        disagreement ("else", the last level): EM can push m of a rarely seen level
        towards zero, which would punish a near-miss harder than a different value.
        A level seen in fewer than ``MIN_LEVEL_SUPPORT`` training pairs carries no weight:
        its m and u are both floors, and their ratio says nothing."""
        weights = []
        for m, u in zip(self.m, self.u):
            m, u = np.asarray(m), np.asarray(u)
            w = np.log2(m / u)
            if self.pairs_trained:
                support = self.pairs_trained * (self.lambda_ * m + (1 - self.lambda_) * u)
                w[:-1] = np.where(support[:-1] < MIN_LEVEL_SUPPORT, 0.0, w[:-1])
            w[:-1] = np.maximum(w[:-1], w[-1])
            weights.append(w)
        return weights

    def prior_weight(self) -> float:
        return float(np.log2(self.lambda_ / (1 - self.lambda_)))

    def to_json(self) -> dict:
        return {"model": "fellegi_sunter", "lambda": self.lambda_, "iterations": self.iterations,
                "converged": self.converged, "tf_comparisons": self.tf_comparisons,
                "u_random_exact": self.u_random_exact, "pairs_trained": self.pairs_trained,
                "comparisons": [{"name": n, "levels": [{"label": lab, "m": m, "u": u, "weight": float(w)}
                                                       for lab, m, u, w in zip(levels, ms, us, ws)]}
                                for n, levels, ms, us, ws in zip(self.comparisons, self.levels, self.m, self.u,
                                                                 self.weights())]}

    @classmethod
    def from_json(cls, data: dict) -> "FellegiSunterModel":
        comps = data["comparisons"]
        return cls(comparisons=[c["name"] for c in comps], levels=[[lv["label"] for lv in c["levels"]] for c in comps],
                   m=[[lv["m"] for lv in c["levels"]] for c in comps], u=[[lv["u"] for lv in c["levels"]] for c in comps],
                   lambda_=data["lambda"], tf_comparisons=data.get("tf_comparisons", []),
                   u_random_exact=data.get("u_random_exact", []), pairs_trained=data.get("pairs_trained", 0),
                   iterations=data.get("iterations", 0), converged=data.get("converged", False))

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2))


def comparison_matrix(comparisons: list[Comparison], encoded: EncodedRecords, left: np.ndarray,
                      right: np.ndarray, shared_value_limit: int) -> np.ndarray:
    """Levels of every pair (rows) for every comparison (columns); -1 = no evidence."""
    gamma = np.empty((len(left), len(comparisons)), dtype=np.int8)
    for j, comparison in enumerate(comparisons):
        level = comparison.compute(encoded, left, right)
        if comparison.column in SHARED_VALUE_COLUMNS:
            counts = encoded[comparison.column].counts
            codes = encoded[comparison.column].codes
            shared = (level == 0) & (counts[np.maximum(codes[left], 0)] > shared_value_limit)
            level[shared] = NULL
        gamma[:, j] = level
    names = [c.name for c in comparisons]
    if "first_name" in names and "last_name" in names:
        _agree_on_swapped_names(encoded, left, right, gamma, names.index("first_name"), names.index("last_name"))
    return gamma


def _agree_on_swapped_names(encoded, left, right, gamma, first_j, last_j) -> None:
    """A record with given and family name swapped agrees on both names."""
    first = encoded["first_name"]
    last = encoded["last_name"]
    # Codes of the two columns differ; compare the values through a shared factorisation.
    values_first = first.values[np.maximum(first.codes, 0)]
    values_last = last.values[np.maximum(last.codes, 0)]
    present = (first.codes[left] >= 0) & (last.codes[left] >= 0) & (first.codes[right] >= 0) & (last.codes[right] >= 0)
    candidates = np.flatnonzero(present & (gamma[:, first_j] != 0))
    swapped = (values_first[left[candidates]] == values_last[right[candidates]]) & \
              (values_last[left[candidates]] == values_first[right[candidates]])
    gamma[candidates[swapped], first_j] = 0
    gamma[candidates[swapped], last_j] = 0


def estimate_u(gamma_random: np.ndarray, level_counts: list[int]) -> list[list[float]]:
    u = []
    for j, k in enumerate(level_counts):
        column = gamma_random[:, j]
        present = column[column >= 0]
        counts = np.bincount(present, minlength=k).astype(float)
        # Half a count keeps never-seen agreement levels finite (rare identifiers).
        u.append(list((counts + 0.5) / (counts.sum() + 0.5 * k)))
    return u


def _initial_m(k: int) -> list[float]:
    if k == 2:
        return [0.9, 0.1]
    middle = [0.1 / (k - 2)] * (k - 2)
    return [0.85, *middle][: k - 1] + [0.05]


def _pattern_log_likelihood(patterns: np.ndarray, probabilities: list[np.ndarray]) -> np.ndarray:
    total = np.zeros(len(patterns))
    for j, p in enumerate(probabilities):
        present = patterns[:, j] >= 0
        total[present] += np.log(p[patterns[present, j]])
    return total


def _level_shares(patterns: np.ndarray, weight: np.ndarray, j: int, k: int, floor: float) -> np.ndarray:
    present = patterns[:, j] >= 0
    totals = np.bincount(patterns[present, j], weights=weight[present], minlength=k)
    share = np.maximum(totals / max(totals.sum(), 1e-12), floor)
    return share / share.sum()


def train_em(gamma: np.ndarray, level_counts: list[int], u: list[list[float]], max_iterations: int = 50,
             tolerance: float = 1e-5, initial_lambda: float = 0.5
             ) -> tuple[list[list[float]], list[list[float]], float, int, bool]:
    """Two-class EM over the distinct patterns of ``gamma``: returns (m, u, lambda,
    iterations, converged). ``u`` is the starting point (from random pairs)."""
    patterns, counts = np.unique(gamma, axis=0, return_counts=True)
    counts = counts.astype(float)
    m = [np.asarray(_initial_m(k)) / sum(_initial_m(k)) for k in level_counts]
    u = [np.asarray(x, dtype=float) for x in u]
    lam = initial_lambda
    converged = False
    iteration = 0
    for iteration in range(1, max_iterations + 1):
        log_odds = (np.log(lam) - np.log1p(-lam) + _pattern_log_likelihood(patterns, m)
                    - _pattern_log_likelihood(patterns, u))
        posterior = 1.0 / (1.0 + np.exp(-np.clip(log_odds, -700, 700)))
        match_weight = posterior * counts
        non_match_weight = (1.0 - posterior) * counts
        # A floor on m keeps one unusual field from vetoing a pair on its own; a floor on u
        # keeps a perfect agreement from becoming infinite evidence.
        new_m = [_level_shares(patterns, match_weight, j, k, M_FLOOR) for j, k in enumerate(level_counts)]
        new_u = [_level_shares(patterns, non_match_weight, j, k, U_FLOOR) for j, k in enumerate(level_counts)]
        new_lambda = float(np.clip(match_weight.sum() / counts.sum(), 1e-9, 1 - 1e-9))
        change = max(abs(new_lambda - lam), *(float(np.max(np.abs(a - b))) for a, b in zip(new_m + new_u, m + u)))
        m, u, lam = new_m, new_u, new_lambda
        if change < tolerance:
            converged = True
            break
    return [list(map(float, x)) for x in m], [list(map(float, x)) for x in u], lam, iteration, converged


@dataclass
class Scores:
    match_weight: np.ndarray
    match_probability: np.ndarray
    field_weights: np.ndarray  # pairs x comparisons, TF adjustments included


def score(model: FellegiSunterModel, gamma: np.ndarray, encoded: EncodedRecords, comparisons: list[Comparison],
          left: np.ndarray, right: np.ndarray) -> Scores:
    weights = model.weights()
    field_weights = np.zeros(gamma.shape, dtype=np.float32)
    for j, (comparison, w) in enumerate(zip(comparisons, weights)):
        level = gamma[:, j]
        present = level >= 0
        field_weights[present, j] = w[level[present]]
        if comparison.name in model.tf_comparisons:
            exact = np.flatnonzero(level == 0)
            column = encoded[comparison.column]
            tf = column.frequency(column.codes[left[exact]], encoded.n)
            u_exact = model.u_random_exact[j] if model.u_random_exact else model.u[j][0]
            # Splink-style: replace the average u of "exact" by this value's frequency;
            # never let a rare value add more than 1 bit beyond the average.
            field_weights[exact, j] += np.minimum(np.log2(u_exact / np.maximum(tf, 1e-12)), 1.0).astype(np.float32)
    names = [c.name for c in comparisons]
    total = model.prior_weight() + field_weights.sum(axis=1)
    if all(n in names for n in DISTINCT_PERSON_COMPARISONS):
        first_j, dob_j = (names.index(n) for n in DISTINCT_PERSON_COMPARISONS)
        else_first = len(model.levels[first_j]) - 1
        else_dob = len(model.levels[dob_j]) - 1
        distinct = (gamma[:, first_j] == else_first) & (gamma[:, dob_j] == else_dob)
        total = np.where(distinct, np.minimum(total, DISTINCT_PERSON_WEIGHT), total)
    probability = 1.0 / (1.0 + np.exp2(-np.clip(total, -200, 200)))
    return Scores(total.astype(np.float32), probability.astype(np.float64), field_weights)
