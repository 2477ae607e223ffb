"""Fellegi–Sunter scoring with parameters estimated without labels.

- u (chance a level occurs between two *different* people) from random record pairs,
  which are almost all non-matches;
- m (chance of the level between two records of the *same* person) by a two-class EM on
  the blocked candidate pairs, with a weak prior (``M_PRIOR_PAIRS``). Its non-match class
  gets its own u, because blocked non-matches (people of one household sharing surname,
  address and phone) agree far more often than random pairs: with u fixed at the random
  value, EM calls them matches; that u has a prior centred on the random one
  (``U_PRIOR_PAIRS``);
- weights are log2(m / u_random), and the prior is the candidate-space match share EM
  found, rescaled to random pairs (matches / possible pairs);
- EM runs over distinct comparison patterns weighted by their counts, not over pairs;
- exact agreement on term-frequency columns is re-weighted by how common the value is:
  sharing "Smith" is weaker evidence than sharing "Featherstonehaugh";
- a phone or e-mail whose holders have more than ``shared_value_limit`` different given
  names (a family line), or an identifier on more than ``IDENTIFIER_RECORD_LIMIT`` records
  (a placeholder), gives no evidence at all.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from rapidfuzz import process
from rapidfuzz.distance import JaroWinkler

from identigraph.resolution.comparisons import NULL, Comparison, cpdist_workers
from identigraph.resolution.encoding import EncodedRecords

# Households share phones and e-mail addresses; a personal identifier shared by this many
# records is a placeholder ("123456", a store's default card), not a person.
SHARED_VALUE_COLUMNS = ("phone", "email")
IDENTIFIER_RECORD_LIMIT = 20
# Both given name and date of birth present and clearly different: not the same person,
# however much household evidence (address, phone, surname) they share. A personal
# identifier that agrees (national id, loyalty number; never a shared value) lifts the rule:
# household members share addresses and phones, not those.
DISTINCT_PERSON_COMPARISONS = ("first_name", "dob")
DISTINCT_PERSON_WEIGHT = -30.0
M_FLOOR = 1e-3
# The "Jaro-Winkler >= 0.92" level of GivenName and of the last-name FuzzyString.
SWAPPED_CLOSE_LEVEL = {"first_name": 2, "last_name": 1}
U_FLOOR = 1e-6
# m is estimated with a Dirichlet prior worth this many matched pairs, shaped like
# ``initial_m``: with thousands of matches the data decides alone; with a few dozen (a
# 500-record file) a near-miss level seen twice keeps a plausible m instead of one learnt
# from two pairs, or none.
M_PRIOR_PAIRS = 20.0
# The non-match class's u starts at the random-pair u and has a prior worth this many pairs
# centred there: a session of a few hundred pairs that are nearly all matches (a small
# file blocked on phone) cannot explain them all as "non-matches that agree", which a free
# u fits perfectly; sessions of many thousands of pairs still learn that blocked
# non-matches (one household) agree more often than random pairs.
U_PRIOR_PAIRS = 1000.0


@dataclass
class FellegiSunterModel:
    comparisons: list[str]
    levels: list[list[str]]
    m: list[list[float]]
    u: list[list[float]]
    lambda_: float = 0.1
    tf_comparisons: list[str] = field(default_factory=list)
    pairs_trained: int = 0
    shared_value_limit: int = 2
    iterations: int = 0
    converged: bool = False

    # Match share among the candidate pairs EM was trained on; ``lambda_`` is per random pair.
    lambda_candidates: float = 0.5

    def weights(self) -> list[np.ndarray]:
        """log2(m/u) per level, each partial agreement between the two ends: never less
        than clear disagreement ("else", the last level) and never more than exact
        agreement (the first). A level hardly seen has m at its floor and u near zero
        (an initial for a given name where nobody writes one): its log-ratio says nothing,
        and would punish a near-miss harder than a different value, or credit "J" ~ "James"
        above "James" ~ "James"."""
        weights = []
        for m_level, u_level in zip(self.m, self.u):
            w = np.log2(np.asarray(m_level) / np.asarray(u_level))
            w[:-1] = np.maximum(w[:-1], w[-1])
            w[1:-1] = np.minimum(w[1:-1], w[0])
            weights.append(w)
        return weights

    def prior_weight(self) -> float:
        return float(np.log2(self.lambda_ / (1 - self.lambda_)))

    def to_json(self) -> dict:
        return {"model": "fellegi_sunter", "lambda": self.lambda_, "iterations": self.iterations,
                "converged": self.converged, "tf_comparisons": self.tf_comparisons,
                "lambda_candidates": self.lambda_candidates, "pairs_trained": self.pairs_trained,
                "shared_value_limit": self.shared_value_limit,
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
                   lambda_candidates=data.get("lambda_candidates", 0.5), pairs_trained=data.get("pairs_trained", 0),
                   shared_value_limit=data.get("shared_value_limit", 2),
                   iterations=data.get("iterations", 0), converged=data.get("converged", False))

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2))


def check_model_fits(model: FellegiSunterModel, comparisons: list[Comparison], what_to_do: str) -> None:
    """A saved model scores these comparisons only if it has their names and levels, in order."""
    if model.comparisons != [c.name for c in comparisons] or model.levels != [list(c.levels) for c in comparisons]:
        raise ValueError(f"the saved model compares {model.comparisons} but these records give "
                         f"{[c.name for c in comparisons]} (or their levels changed with this version of "
                         f"identigraph); {what_to_do}")


# Whose name tells the holders of a shared phone or e-mail apart: people by given name
# (compared by sound, so typos of one name count once), organisations by name (restaurants
# of one hotel share its switchboard).
HOLDER_NAME_COLUMNS = ("first_name_metaphone", "organisation")


def shared_values(encoded: EncodedRecords, column: str, limit: int) -> np.ndarray:
    """Per distinct value of ``column``: held by records of more than ``limit`` different
    names (``HOLDER_NAME_COLUMNS``, the first the data has)."""
    cache_key = ("shared", column, limit)
    if cache_key in encoded.cache:
        return encoded.cache[cache_key]
    column_codes = encoded[column].codes
    holder = next((c for c in HOLDER_NAME_COLUMNS if c in encoded and encoded.has(c, 0.0)), None)
    if holder is None:
        return np.zeros(len(encoded[column].values), dtype=bool)
    names = encoded[holder].codes
    both = (column_codes >= 0) & (names >= 0)
    holders = pd.DataFrame({"value": column_codes[both], "name": names[both]}).drop_duplicates()
    distinct_names = np.bincount(holders["value"].to_numpy(), minlength=len(encoded[column].values))
    encoded.cache[cache_key] = distinct_names > limit
    return encoded.cache[cache_key]


def comparison_matrix(comparisons: list[Comparison], encoded: EncodedRecords, left: np.ndarray,
                      right: np.ndarray, shared_value_limit: int) -> np.ndarray:
    """Levels of every pair (rows) for every comparison (columns); -1 = no evidence."""
    gamma = np.empty((len(left), len(comparisons)), dtype=np.int8)
    for j, comparison in enumerate(comparisons):
        level = comparison.compute(encoded, left, right)
        codes = encoded[comparison.column].codes
        # (A population with no value in the column has nothing to void: every level is NULL.)
        if comparison.column in SHARED_VALUE_COLUMNS:
            shared = shared_values(encoded, comparison.column, shared_value_limit)
            if len(shared):
                level[(level == 0) & shared[np.maximum(codes[left], 0)]] = NULL
        elif comparison.column == "identifier":
            placeholder = encoded["identifier"].counts > IDENTIFIER_RECORD_LIMIT
            if len(placeholder):
                level[(level == 0) & placeholder[np.maximum(codes[left], 0)]] = NULL
        gamma[:, j] = level
    names = [c.name for c in comparisons]
    if "first_name" in names and "last_name" in names:
        _agree_on_swapped_names(encoded, left, right, gamma, names.index("first_name"), names.index("last_name"))
    return gamma


def _agree_on_swapped_names(encoded, left, right, gamma, first_j, last_j) -> None:
    """A record with given and family name swapped agrees on both names: exactly when both
    swapped values are equal, else at the Jaro-Winkler >= 0.92 level when both are close."""
    first, last = encoded["first_name"], encoded["last_name"]
    present = (first.codes[left] >= 0) & (last.codes[left] >= 0) & (first.codes[right] >= 0) & (last.codes[right] >= 0)
    candidates = np.flatnonzero(present & (gamma[:, first_j] != 0))
    if len(candidates) == 0:
        return
    first_l = first.values[first.codes[left[candidates]]]
    last_l = last.values[last.codes[left[candidates]]]
    first_r = first.values[first.codes[right[candidates]]]
    last_r = last.values[last.codes[right[candidates]]]
    workers = cpdist_workers(len(candidates))
    a = np.asarray(process.cpdist(first_l.tolist(), last_r.tolist(), scorer=JaroWinkler.normalized_similarity,
                                  workers=workers))
    b = np.asarray(process.cpdist(last_l.tolist(), first_r.tolist(), scorer=JaroWinkler.normalized_similarity,
                                  workers=workers))
    exact = (a == 1.0) & (b == 1.0)
    close = (a >= 0.92) & (b >= 0.92) & ~exact
    gamma[candidates[exact], first_j] = 0
    gamma[candidates[exact], last_j] = 0
    gamma[candidates[close], first_j] = SWAPPED_CLOSE_LEVEL["first_name"]
    gamma[candidates[close], last_j] = SWAPPED_CLOSE_LEVEL["last_name"]


def estimate_u(gamma_random: np.ndarray, level_counts: list[int]) -> list[list[float]]:
    u = []
    for j, k in enumerate(level_counts):
        column = gamma_random[:, j]
        present = column[column >= 0]
        counts = np.bincount(present, minlength=k).astype(float)
        # Half a count keeps never-seen agreement levels finite (rare identifiers).
        u.append(list((counts + 0.5) / (counts.sum() + 0.5 * k)))
    return u


def initial_m(k: int) -> list[float]:
    if k == 2:
        return [0.9, 0.1]
    middle = [0.1 / (k - 2)] * (k - 2)
    return [0.85, *middle][: k - 1] + [0.05]


def pattern_index(gamma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of ``gamma`` (sorted as ``np.unique(axis=0)`` sorts them) and, per
    row, the index of its pattern. Rows are packed into one integer first:
    ``np.unique(axis=0)`` sorts rows as records and is many times slower."""
    if len(gamma) == 0:
        return gamma, np.empty(0, dtype=np.int64)
    shifted = gamma.astype(np.int64) + 1  # -1 (missing) becomes 0
    radix = shifted.max(axis=0) + 1
    code = np.zeros(len(gamma), dtype=np.int64)
    for j in range(gamma.shape[1]):
        code = code * radix[j] + shifted[:, j]
    # Hashing rather than sorting the millions of rows.
    inverse, distinct = pd.factorize(code, sort=True)
    first = np.empty(len(distinct), dtype=np.int64)
    first[inverse[::-1]] = np.arange(len(code) - 1, -1, -1)
    return gamma[first], inverse


def distinct_patterns(gamma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of ``gamma`` and their counts."""
    patterns, inverse = pattern_index(gamma)
    return patterns, np.bincount(inverse, minlength=len(patterns))


def _pattern_log_likelihood(patterns: np.ndarray, probabilities: list[np.ndarray]) -> np.ndarray:
    total = np.zeros(len(patterns))
    for j, p in enumerate(probabilities):
        present = patterns[:, j] >= 0
        total[present] += np.log(p[patterns[present, j]])
    return total


def _level_shares(patterns: np.ndarray, weight: np.ndarray, j: int, k: int, floor: float,
                  prior: np.ndarray | None = None) -> np.ndarray:
    """Weighted share of each level; ``prior``: pseudo-counts added first (MAP under a
    Dirichlet prior)."""
    present = patterns[:, j] >= 0
    totals = np.bincount(patterns[present, j], weights=weight[present], minlength=k)
    if prior is not None:
        totals = totals + prior
    share = np.maximum(totals / max(totals.sum(), 1e-12), floor)
    return share / share.sum()


def train_lambda(gamma: np.ndarray, m: list[list[float]], u: list[list[float]], max_iterations: int = 100,
                 tolerance: float = 1e-7, patterns: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    """EM for the match share alone, m and u fixed; 0.5 (no evidence) without candidates.
    ``patterns``: ``distinct_patterns(gamma)`` where the caller has it already."""
    if len(gamma) == 0:
        return 0.5
    distinct, counts = patterns if patterns is not None else distinct_patterns(gamma)
    log_ratio = (_pattern_log_likelihood(distinct, [np.asarray(x) for x in m])
                 - _pattern_log_likelihood(distinct, [np.asarray(x) for x in u]))
    lam = 0.5
    for _ in range(max_iterations):
        posterior = 1.0 / (1.0 + np.exp(-np.clip(np.log(lam) - np.log1p(-lam) + log_ratio, -700, 700)))
        new_lambda = float(np.clip((posterior * counts).sum() / counts.sum(), 1e-9, 1 - 1e-9))
        if abs(new_lambda - lam) < tolerance:
            return new_lambda
        lam = new_lambda
    return lam


def train_em(gamma: np.ndarray, level_counts: list[int], u: list[list[float]], max_iterations: int = 50,
             tolerance: float = 1e-5, initial_lambda: float = 0.5,
             patterns: tuple[np.ndarray, np.ndarray] | None = None,
             ) -> tuple[list[list[float]], list[list[float]], float, int, bool]:
    """Two-class EM over the distinct patterns of ``gamma``: returns (m, u, lambda,
    iterations, converged). ``u`` is the starting point (from random pairs). ``patterns``:
    (patterns, counts) standing for ``gamma`` where the caller has them; a pattern may occur
    more than once there (the counts add up)."""
    distinct, pattern_counts = patterns if patterns is not None else distinct_patterns(gamma)
    counts = pattern_counts.astype(float)
    m = [np.asarray(initial_m(k)) / sum(initial_m(k)) for k in level_counts]
    m_prior = [M_PRIOR_PAIRS * shape for shape in m]
    u_now = [np.asarray(x, dtype=float) for x in u]
    u_prior = [U_PRIOR_PAIRS * x for x in u_now]
    lam = initial_lambda
    converged = False
    iteration = 0
    for iteration in range(1, max_iterations + 1):  # noqa: B007 (the count is returned)
        log_odds = (np.log(lam) - np.log1p(-lam) + _pattern_log_likelihood(distinct, m)
                    - _pattern_log_likelihood(distinct, u_now))
        posterior = 1.0 / (1.0 + np.exp(-np.clip(log_odds, -700, 700)))
        match_weight = posterior * counts
        non_match_weight = (1.0 - posterior) * counts
        # A floor on m keeps one unusual field from vetoing a pair on its own; a floor on u
        # keeps a perfect agreement from becoming infinite evidence.
        new_m = [_level_shares(distinct, match_weight, j, k, M_FLOOR, m_prior[j]) for j, k in enumerate(level_counts)]
        new_u = [_level_shares(distinct, non_match_weight, j, k, U_FLOOR, u_prior[j]) for j, k in enumerate(level_counts)]
        new_lambda = float(np.clip(match_weight.sum() / counts.sum(), 1e-9, 1 - 1e-9))
        change = max(abs(new_lambda - lam), *(float(np.max(np.abs(a - b))) for a, b in zip(new_m + new_u, m + u_now)))
        m, u_now, lam = new_m, new_u, new_lambda
        if change < tolerance:
            converged = True
            break
    return [list(map(float, x)) for x in m], [list(map(float, x)) for x in u_now], lam, iteration, converged


@dataclass
class Scores:
    match_weight: np.ndarray
    match_probability: np.ndarray
    field_weights: np.ndarray  # pairs x comparisons, TF adjustments included


def pair_scorer(model: FellegiSunterModel, comparisons: list[Comparison], encoded: EncodedRecords,
                shared_value_limit: int):
    """``(left, right) -> match probability`` for pairs blocking did not produce: what
    clustering calls to complete small components."""
    def score_pairs(left: np.ndarray, right: np.ndarray) -> np.ndarray:
        gamma = comparison_matrix(comparisons, encoded, left, right, shared_value_limit)
        return score(model, gamma, encoded, comparisons, left, right).match_probability

    return score_pairs


def score(model: FellegiSunterModel, gamma: np.ndarray, encoded: EncodedRecords, comparisons: list[Comparison],
          left: np.ndarray, right: np.ndarray) -> Scores:
    return combine_weights(model, gamma, comparisons,
                           pair_field_weights(model, gamma, encoded, comparisons, left, right))


def pair_field_weights(model: FellegiSunterModel, gamma: np.ndarray, encoded: EncodedRecords,
                       comparisons: list[Comparison], left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Each pair's weight per comparison (pairs x comparisons), term frequencies included;
    they do not depend on the prior."""
    return weights_from_frequencies(model, gamma, comparisons,
                                    exact_value_frequencies(model.tf_comparisons, gamma, encoded, comparisons,
                                                            left, right))


def exact_value_frequencies(tf_comparisons: list[str], gamma: np.ndarray, encoded: EncodedRecords,
                            comparisons: list[Comparison], left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Per pair and comparison, the share of records holding the value both records agree
    on, where the comparison is term-frequency adjusted and the pair agrees exactly; NaN
    elsewhere. Shares are of ``encoded.population`` (every record of the run, also where
    ``encoded`` holds only some of them: a Spark partition)."""
    frequencies = np.full(gamma.shape, np.nan, dtype=np.float64)
    for j, comparison in enumerate(comparisons):
        if comparison.name not in tf_comparisons:
            continue
        exact = np.flatnonzero(gamma[:, j] == 0)
        column = encoded[comparison.column]
        # Both ends: equal values give equal shares, and names agreeing only when swapped
        # take the commoner of the two, so the weight does not depend on which record is
        # the left one (the records' order).
        frequencies[exact, j] = np.maximum(column.frequency(column.codes[left[exact]], encoded.population),
                                           column.frequency(column.codes[right[exact]], encoded.population))
    return frequencies


def weights_from_frequencies(model: FellegiSunterModel, gamma: np.ndarray, comparisons: list[Comparison],
                             frequencies: np.ndarray) -> np.ndarray:
    """Each pair's weight per comparison from its levels and, where the comparison is
    term-frequency adjusted and agrees exactly, the agreed value's share
    (``exact_value_frequencies``)."""
    weights = model.weights()
    field_weights = np.zeros(gamma.shape, dtype=np.float32)
    for j, (comparison, w) in enumerate(zip(comparisons, weights)):
        level = gamma[:, j]
        present = level >= 0
        field_weights[present, j] = w[level[present]]
        if comparison.name in model.tf_comparisons:
            exact = np.flatnonzero(level == 0)
            tf = frequencies[exact, j]
            u_exact = model.u[j][0]
            # Splink-style: replace the average u of "exact" by this value's frequency;
            # never let a rare value add more than 1 bit beyond the average.
            field_weights[exact, j] += np.minimum(np.log2(u_exact / np.maximum(tf, 1e-12)), 1.0).astype(np.float32)
    return field_weights


def combine_weights(model: FellegiSunterModel, gamma: np.ndarray, comparisons: list[Comparison],
                    field_weights: np.ndarray) -> Scores:
    """The prior plus the field weights, as match weight and probability; a pair of clearly
    different persons (``DISTINCT_PERSON_COMPARISONS``) capped at ``DISTINCT_PERSON_WEIGHT``."""
    names = [c.name for c in comparisons]
    total = model.prior_weight() + field_weights.sum(axis=1)
    if all(n in names for n in DISTINCT_PERSON_COMPARISONS):
        first_j, dob_j = (names.index(n) for n in DISTINCT_PERSON_COMPARISONS)
        else_first = len(model.levels[first_j]) - 1
        else_dob = len(model.levels[dob_j]) - 1
        distinct = (gamma[:, first_j] == else_first) & (gamma[:, dob_j] == else_dob)
        if "identifier" in names:
            distinct &= gamma[:, names.index("identifier")] != 0
        total = np.where(distinct, np.minimum(total, DISTINCT_PERSON_WEIGHT), total)
    probability = 1.0 / (1.0 + np.exp2(-np.clip(total, -200, 200)))
    return Scores(total.astype(np.float32), probability.astype(np.float64), field_weights)
