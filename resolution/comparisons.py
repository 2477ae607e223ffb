"""Comparisons: declarative templates that turn record pairs into agreement levels.

Each comparison maps a pair to a level: 0 is the strongest agreement, the last level is
"else" (clear disagreement) and -1 means a value is missing (no evidence either way). All of
it is vectorised: exact agreement compares integer codes, fuzzy similarity (rapidfuzz
``cpdist``) runs once per distinct pair of values.
"""
from __future__ import annotations

import csv
import importlib.resources
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process
from rapidfuzz.distance import JaroWinkler, Levenshtein

from identigraph.resolution.encoding import EncodedRecords

NULL = -1
# rapidfuzz's ``workers=-1`` starts a thread pool per call: 0.1-7 ms of start-up, which is most
# of a call on a few hundred pairs (a served match compares tens). Measured on 2 cores, the
# pool pays off from about 20k pairs (2026-12-05; JaroWinkler and token_set_ratio).
PARALLEL_FROM_PAIRS = 20_000
# Below this many values, numbering them in a dictionary is faster than pandas' factorize.
SMALL_FACTORIZE = 4_096


def cpdist_workers(pairs: int) -> int:
    """rapidfuzz ``cpdist``'s ``workers`` for a call on ``pairs`` pairs: all cores for a large
    call, this thread alone for a small one."""
    return -1 if pairs >= PARALLEL_FROM_PAIRS else 1


def _per_distinct_pair(values: np.ndarray, left: np.ndarray, right: np.ndarray, function) -> np.ndarray:
    """``function(a_values, b_values) -> array`` applied once per distinct pair of codes and
    spread back to every pair."""
    if len(left) == 0:
        return function(values[:0], values[:0])
    key = left.astype(np.int64) * len(values) + right
    inverse, distinct = pd.factorize(key)  # hashing: np.unique sorts millions of keys
    return np.asarray(function(values[distinct // len(values)], values[distinct % len(values)]))[inverse]


def _distinct_pair_scores(values: np.ndarray, left: np.ndarray, right: np.ndarray, scorer,
                          score_cutoff: int | None = None) -> np.ndarray:
    """A rapidfuzz ``scorer`` on (values[left], values[right]), once per distinct pair.
    ``score_cutoff``, for integer distances only: the most any level asks for; rapidfuzz stops
    early beyond it and returns cutoff + 1. (Not for similarities: at a cutoff of 0.8, a
    Jaro-Winkler of exactly 0.8 comes back as 0.)"""
    return _per_distinct_pair(values, left, right, lambda a, b: np.asarray(
        process.cpdist(a.tolist(), b.tolist(), scorer=scorer, score_cutoff=score_cutoff,
                       workers=cpdist_workers(len(a))),
        dtype=np.float32))


def spelling_or_words_similarity(values: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The better of Jaro-Winkler (a typo) and token-set similarity (one value's words inside
    the other's, in any order), in [0, 1]; both once per distinct pair, found once."""
    def better(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        x, y = x.tolist(), y.tolist()
        workers = cpdist_workers(len(x))
        spelling = process.cpdist(x, y, scorer=JaroWinkler.normalized_similarity, workers=workers)
        words = process.cpdist(x, y, scorer=fuzz.token_set_ratio, workers=workers) / 100.0
        return np.maximum(spelling, words).astype(np.float32)

    return _per_distinct_pair(values, a, b, better)


@lru_cache(maxsize=1)
def nickname_pairs() -> frozenset[tuple[str, str]]:
    """Given names that are the same person's name (William ~ Bill), both directions,
    from the hand-curated `nicknames` data set."""
    pairs = set()
    with importlib.resources.files("nicknames").joinpath("names.csv").open(encoding="utf-8") as handle:
        for row in csv.reader(handle):
            if len(row) >= 3 and row[1] in ("has_nickname", "has_alternate_name", "has_diminutive"):
                a, b = row[0].strip().lower(), row[2].strip().lower()
                pairs.add((a, b))
                pairs.add((b, a))
    return frozenset(pairs)


@dataclass(frozen=True)
class Comparison:
    """Base: ``column`` compared, ``levels`` labels (last is "else"), ``tf`` = term-frequency
    adjusted at the exact level, ``deterministic`` = exact agreement is near-proof."""

    name: str
    column: str
    levels: tuple[str, ...]
    tf: bool = False

    def compute(self, encoded: EncodedRecords, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        codes = encoded[self.column].codes
        a, b = codes[left], codes[right]
        level = np.full(len(left), len(self.levels) - 1, dtype=np.int8)
        missing = (a < 0) | (b < 0)
        exact = (a == b) & ~missing
        level[exact] = 0
        undecided = np.flatnonzero(~exact & ~missing)
        if len(undecided):
            self._fuzzy_levels(encoded, a[undecided], b[undecided], level, undecided)
        level[missing] = NULL
        return level

    def _fuzzy_levels(self, encoded, a, b, level, index) -> None:
        """Levels between exact and else; the base class has none."""

    def describe(self, level: int) -> str:
        return "missing" if level == NULL else self.levels[level]


@dataclass(frozen=True)
class ExactMatch(Comparison):
    levels: tuple[str, ...] = ("exact", "else")


@dataclass(frozen=True)
class FuzzyString(Comparison):
    """exact | Jaro-Winkler >= thresholds[0] | ... | else."""

    thresholds: tuple[float, ...] = (0.92, 0.80)
    levels: tuple[str, ...] = ("exact", "jaro_winkler>=0.92", "jaro_winkler>=0.80", "else")

    def scores(self, values: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Similarity in [0, 1] of (values[a], values[b]), once per distinct pair."""
        return _distinct_pair_scores(values, a, b, JaroWinkler.normalized_similarity)

    def _fuzzy_levels(self, encoded, a, b, level, index) -> None:
        score = self.scores(encoded[self.column].values, a, b)
        assigned = np.zeros(len(index), dtype=bool)
        for k, threshold in enumerate(self.thresholds, start=1):
            hit = (score >= threshold) & ~assigned
            level[index[hit]] = k
            assigned |= hit


@dataclass(frozen=True)
class GivenName(FuzzyString):
    """exact | nickname (Bill ~ William) | Jaro-Winkler >= 0.92 | >= 0.80 | initial (D ~
    Daniel) | else.

    With ``then_column`` (the middle names), given names written as one word or two are
    exact too: "Seok Ju" (seok, then ju) is "Seokju" (seokju)."""

    levels: tuple[str, ...] = ("exact", "nickname", "jaro_winkler>=0.92", "jaro_winkler>=0.80", "initial", "else")
    then_column: str | None = None

    def compute(self, encoded: EncodedRecords, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        level = super().compute(encoded, left, right)
        if self.then_column is not None and self.then_column in encoded:
            differ = np.flatnonzero(level > 0)
            joined = _joined_codes(encoded, self.column, self.then_column, left[differ], right[differ])
            level[differ[joined]] = 0
        return level

    def _fuzzy_levels(self, encoded, a, b, level, index) -> None:
        values = encoded[self.column].values
        relation = nickname_pairs()
        is_nick = _per_distinct_pair(values, a, b, lambda x, y: np.array(
            [pair in relation for pair in zip(x, y)], dtype=bool))
        level[index[is_nick]] = 1
        score = _distinct_pair_scores(values, a, b, JaroWinkler.normalized_similarity)
        level[index[~is_nick & (score >= 0.92)]] = 2
        level[index[~is_nick & (score < 0.92) & (score >= 0.80)]] = 3
        # Jaro-Winkler says little of a one-letter value: an initial agrees or it does not.
        lengths = _value_lengths(encoded, self.column)
        first_letter = _value_parts(encoded, self.column, "first_letter", lambda v: v[:1])[:, 0]
        one_letter = (lengths[a] == 1) | (lengths[b] == 1)
        level[index[one_letter]] = len(self.levels) - 1
        level[index[one_letter & (first_letter[a] == first_letter[b])]] = 4


def _joined_codes(encoded: EncodedRecords, column: str, then_column: str, left: np.ndarray,
                  right: np.ndarray) -> np.ndarray:
    """Per pair (both sides with a ``column`` value), whether ``column`` and then
    ``then_column`` written together agree; the text is built once per distinct
    (value, value) of the records involved."""
    first, then = encoded[column], encoded[then_column]
    width = len(then.values) + 1  # code 0: no second part
    record_key = first.codes.astype(np.int64) * width + (then.codes.astype(np.int64) + 1)
    inverse, distinct = pd.factorize(np.concatenate([record_key[left], record_key[right]]))
    then_values = ["", *then.values.tolist()]
    joined = [first.values[k // width] + then_values[k % width] for k in distinct.tolist()]
    codes = pd.factorize(pd.Series(joined, dtype=object))[0][inverse]
    return codes[: len(left)] == codes[len(left):]


@dataclass(frozen=True)
class FreeText(FuzzyString):
    """exact | similar >= 0.92 | >= 0.80 | else, where similar is the better of Jaro-Winkler
    (spelling) and token-set similarity (shared words: co-inventor lists, "flat 2" ~ "2")."""

    levels: tuple[str, ...] = ("exact", "similar>=0.92", "similar>=0.80", "else")

    def scores(self, values: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return spelling_or_words_similarity(values, a, b)


@dataclass(frozen=True)
class OrganisationName(FuzzyString):
    """exact | token-set similarity >= 0.9 (one name's words inside the other's: "apple pan"
    ~ "the apple pan cafe") | >= 0.7 | else, on keys without legal forms."""

    thresholds: tuple[float, ...] = (0.9, 0.7)
    levels: tuple[str, ...] = ("exact", "token_set>=0.9", "token_set>=0.7", "else")

    def scores(self, values: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return _distinct_pair_scores(values, a, b, fuzz.token_set_ratio) / 100.0


def _value_parts(encoded: EncodedRecords, column: str, name: str, *parts) -> np.ndarray:
    """Integer codes of ``part(value)`` for each of ``parts`` (one column each) per distinct
    value of ``column``, all parts in one numbering (the month "05" and the day "05" share a
    code); computed once per run, so comparing parts is an array lookup per pair."""
    key = ("parts", column, name)
    if key not in encoded.cache:
        values = encoded[column].values
        texts = [part(v) for part in parts for v in values]
        if len(texts) < SMALL_FACTORIZE:  # a served match's few values: a Series costs more than they do
            numbering: dict[str, int] = {}
            codes = np.array([numbering.setdefault(t, len(numbering)) for t in texts], dtype=np.int64)
        else:  # numbered by first appearance, as above
            codes = pd.factorize(pd.Series(texts, dtype=object))[0]
        encoded.cache[key] = codes.reshape(len(parts), len(values)).T
    return encoded.cache[key]


def _value_lengths(encoded: EncodedRecords, column: str) -> np.ndarray:
    key = ("length", column)
    if key not in encoded.cache:
        values = encoded[column].values
        encoded.cache[key] = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    return encoded.cache[key]


def _within_edits(encoded: EncodedRecords, column: str, a: np.ndarray, b: np.ndarray, max_edits: int) -> np.ndarray:
    """Levenshtein distance of (values[a], values[b]) at most ``max_edits``. Values whose
    lengths differ by more are that far apart already, so only the rest are measured."""
    lengths = _value_lengths(encoded, column)
    close = np.flatnonzero(np.abs(lengths[a] - lengths[b]) <= max_edits)
    within = np.zeros(len(a), dtype=bool)
    edits = _distinct_pair_scores(encoded[column].values, a[close], b[close], Levenshtein.distance, max_edits)
    within[close] = edits <= max_edits
    return within


@dataclass(frozen=True)
class DateOfBirth(Comparison):
    """exact | day and month transposed | one character different | same year | else.

    Dates are ISO ``YYYY-MM-DD``, or ``YYYY-MM`` and ``YYYY`` where only those parts are known."""

    levels: tuple[str, ...] = ("exact", "day_month_transposed", "one_edit", "same_year", "else")

    def _fuzzy_levels(self, encoded, a, b, level, index) -> None:
        parts = _value_parts(encoded, self.column, "year_month_day", lambda v: v[:4], lambda v: v[5:7],
                             lambda v: v[8:10])
        year, month, day = parts[:, 0], parts[:, 1], parts[:, 2]
        same_year = year[a] == year[b]
        transposed = same_year & (month[a] == day[b]) & (day[a] == month[b])
        result = np.full(len(a), len(self.levels) - 1, dtype=np.int8)
        result[same_year] = 3
        result[_within_edits(encoded, self.column, a, b, 1)] = 2
        result[transposed] = 1
        level[index] = result


@dataclass(frozen=True)
class PartThenEdits(Comparison):
    """exact | same ``part`` of the value | at most ``max_edits`` characters different | else."""

    max_edits: int = 1

    @staticmethod
    def part(value: str) -> str:
        raise NotImplementedError

    def _fuzzy_levels(self, encoded, a, b, level, index) -> None:
        part = _value_parts(encoded, self.column, type(self).__name__, self.part)[:, 0]
        same_part = part[a] == part[b]
        level[index[same_part]] = 1
        level[index[~same_part & _within_edits(encoded, self.column, a, b, self.max_edits)]] = 2


@dataclass(frozen=True)
class Email(PartThenEdits):
    """exact | same local part (another domain) | at most two characters different | else.

    Local parts are mostly built from names ("bethanbrown741"), so "similar" local parts
    of two people with one name are common: only typo-sized differences count."""

    levels: tuple[str, ...] = ("exact", "same_local_part", "two_edits", "else")
    max_edits: int = 2

    @staticmethod
    def part(value: str) -> str:
        return value.split("@")[0]


@dataclass(frozen=True)
class Phone(PartThenEdits):
    """exact | last 7 digits equal | one digit different | else."""

    levels: tuple[str, ...] = ("exact", "last_7_digits", "one_edit", "else")

    @staticmethod
    def part(value: str) -> str:
        return value[-7:]


@dataclass(frozen=True)
class Address(Comparison):
    """One comparison over street, postcode, city and region together: they describe one
    place, and scoring them as independent agreements counts a shared home several times,
    and a move several times over (a new city is a new state, often a new employer too).

    same street and postcode | same street, same city or district | same postcode |
    same district or city and same region | same district or city | same region | else;
    missing when no part is on both sides. Whether a region agreeing beside the city adds
    evidence is learnt, not assumed: it does where regions are recorded independently of
    cities, and not where the city already says it."""

    column: str = "street"
    levels: tuple[str, ...] = ("street_and_postcode", "street_and_area", "postcode", "area_and_region", "area",
                               "region", "else")

    def compute(self, encoded: EncodedRecords, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        def agree(column: str) -> tuple[np.ndarray, np.ndarray]:
            if column not in encoded:
                return np.zeros(len(left), bool), np.zeros(len(left), bool)
            codes = encoded[column].codes
            a, b = codes[left], codes[right]
            return (a == b) & (a >= 0), (a >= 0) & (b >= 0)

        street_exact, street_present = agree("street")
        postcode, postcode_present = agree("postcode")
        district, _ = agree("postcode_district")
        city, city_present = agree("city")
        if "street" in encoded:
            street_close = street_exact.copy()
            undecided = np.flatnonzero(street_present & ~street_exact)
            values = encoded["street"].values
            codes = encoded["street"].codes
            # "854 7th avenue between 54th and 55th streets" is "854 7th avenue" with directions added.
            scores = spelling_or_words_similarity(values, codes[left[undecided]], codes[right[undecided]])
            street_close[undecided[scores >= 0.9]] = True
        else:
            street_close = street_exact
        region, region_present = agree("region")
        area = district | city
        level = np.full(len(left), 6, dtype=np.int8)
        level[region] = 5
        level[area] = 4
        level[area & region] = 3
        level[postcode] = 2
        level[street_close & area] = 1
        level[street_close & postcode] = 0
        level[~(street_present | postcode_present | city_present | region_present)] = NULL
        return level
