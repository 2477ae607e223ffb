"""Blocking: which record pairs are compared at all.

Each ``BlockingRule`` pairs records that agree exactly on all its key columns. Rules are
combined by union; blocks larger than ``max_block_size`` are skipped and reported, since
they grow quadratically and hold mostly non-matches (a shared junk value, a very common name).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from identigraph.resolution import semantic_types
from identigraph.resolution.encoding import ColumnStatistics, EncodedRecords
from identigraph.resolution.semantic_types import BlockingRule


@dataclass
class RuleReport:
    rule: str
    pairs: int
    blocks_skipped: int
    records_in_skipped_blocks: int


@dataclass
class BlockingResult:
    left: np.ndarray  # record index, left < right
    right: np.ndarray
    reports: list[RuleReport] = field(default_factory=list)
    possible_pairs: int = 0

    @property
    def reduction_ratio(self) -> float:
        return 1.0 - len(self.left) / self.possible_pairs if self.possible_pairs else 0.0


def add_blocking_keys(encoded: EncodedRecords) -> None:
    """Derived keys the default rules use: the semantic types' keys (phonetic names,
    initials, birth year) and the sorted name pair."""
    for key in semantic_types.blocking_keys():
        encoded.derived_per_value(key.name, key.column, key.function)
    first, last = encoded.arrow("first_name"), encoded.arrow("last_name")
    # UTF-8 bytes sort as code points, so this is Python's string order.
    first_is_lower = pc.less(first, last)
    encoded.derived_arrow("name_pair", pc.binary_join_element_wise(
        pc.if_else(first_is_lower, first, last), pc.if_else(first_is_lower, last, first), "|"))


def blocking_key_values(record: Mapping[str, str | None]) -> dict[str, str | None]:
    """One record's derived keys (its standardised values by column), as ``add_blocking_keys``
    derives them for a table: for the few records of a served match, where building and
    encoding a table cost more than the keys."""
    keys: dict[str, str | None] = {}
    for key in semantic_types.blocking_keys():
        value = record.get(key.column)
        keys[key.name] = None if value is None else key.function(value)
    first, last = record.get("first_name"), record.get("last_name")
    keys["name_pair"] = None if first is None or last is None else "|".join(sorted((first, last)))
    return keys


def default_rules(encoded: ColumnStatistics) -> list[BlockingRule]:
    """The rules whose columns the data has: each type's rules over its own columns (strong
    identifiers alone: e-mail, phone, identifier), then combinations of name, date of birth
    and location that survive a typo in any single field."""
    candidates = [
        *semantic_types.blocking_rules(),
        BlockingRule("name_pair", ("name_pair",), max_block_size=50),  # first+last in either order
        BlockingRule("dob+last_name_metaphone", ("dob", "last_name_metaphone")),
        BlockingRule("dob+first_name_metaphone", ("dob", "first_name_metaphone")),
        BlockingRule("dob+postcode", ("dob", "postcode")),
        BlockingRule("postcode+first_initial", ("postcode", "first_initial")),
        BlockingRule("postcode+last_name_metaphone", ("postcode", "last_name_metaphone")),
        BlockingRule("last_name_metaphone+first_name_metaphone+birth_year",
                     ("last_name_metaphone", "first_name_metaphone", "birth_year")),
        BlockingRule("street+postcode_district", ("street", "postcode_district")),
        BlockingRule("street+city", ("street", "city")),
        BlockingRule("dob+city", ("dob", "city")),
    ]
    if not (encoded.has("first_name", 0.02) or encoded.has("last_name", 0.02)):
        # Records of organisations (shops, sites, suppliers) are known by their name, whatever
        # their phone and address; for people, an employer's name would pair everyone who
        # works there.
        candidates += [BlockingRule("organisation", ("organisation",), max_block_size=50),
                       BlockingRule("street_number+city", ("street_number", "city"), max_block_size=50)]
    return [rule for rule in candidates if all(encoded.has(c, 0.02) for c in rule.columns)]


def group_ids(encoded: EncodedRecords, columns: tuple[str, ...]) -> np.ndarray:
    """One id per distinct key combination, -1 where any key column is missing."""
    codes = [encoded[c].codes.astype(np.int64) for c in columns]
    missing = np.zeros(encoded.n, dtype=bool)
    for c in codes:
        missing |= c < 0
    key = codes[0].copy()
    for c, column in zip(codes[1:], columns[1:]):
        key = key * (len(encoded[column].values) + 1) + c
        if key.max(initial=0) > 2**52:  # re-densify before the product overflows
            key = pd.factorize(key)[0].astype(np.int64)
    ids = pd.factorize(key)[0].astype(np.int64)
    ids[missing] = -1
    return ids


# Derived blocking keys and the standardised columns they come from.
def key_sources() -> dict[str, tuple[str, ...]]:
    return {**{key.name: (key.column,) for key in semantic_types.blocking_keys()},
            "name_pair": ("first_name", "last_name"), "postcode_district": ("postcode",)}

ADDRESS_COLUMNS = ("street", "postcode", "postcode_district", "city", "region")


def rule_columns(rule: BlockingRule) -> set[str]:
    """Standardised columns a rule forces to agree."""
    columns = set()
    for column in rule.columns:
        columns |= set(key_sources().get(column, (column,)))
    return columns


def comparison_columns(comparison) -> set[str]:
    return set(ADDRESS_COLUMNS) if comparison.name == "address" else {comparison.column}


def training_rules(encoded: ColumnStatistics) -> list[BlockingRule]:
    """Blocking rules for m-estimation sessions; between them every comparison is free
    (not forced to agree) in at least one session."""
    candidates = [BlockingRule("name_pair", ("name_pair",)),
                  BlockingRule("dob", ("dob",)),
                  BlockingRule("email", ("email",)),
                  BlockingRule("phone", ("phone",)),
                  BlockingRule("postcode", ("postcode",))]
    return [rule for rule in candidates if all(encoded.has(c, 0.02) for c in rule.columns)]


def fallback_training_rules(encoded: ColumnStatistics) -> list[BlockingRule]:
    """Sessions for comparisons that every ``training_rules`` session forces to agree (data
    with names but no date, e-mail, phone or postcode: every session is the name block, so
    the names' m would never be learnt): one per place, organisation or category column."""
    columns = ["city", "organisation", "postcode_district",
               *sorted(c for c in encoded.records.columns if c.startswith("category__"))]
    return [BlockingRule(column, (column,)) for column in columns if encoded.has(column, 0.02)]


def pairs_within_blocks(group: np.ndarray, max_block_size: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """All pairs of records sharing a group id (ignoring -1 and oversized groups)."""
    valid = np.flatnonzero(group >= 0)
    order = valid[np.argsort(group[valid], kind="stable")]
    sorted_groups = group[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    oversized = sizes > max_block_size
    size_of = np.repeat(sizes, sizes)
    position = np.arange(len(order)) - np.repeat(starts, sizes)
    keep = (size_of >= 2) & (size_of <= max_block_size)
    order, size_of, position = order[keep], size_of[keep], position[keep]
    left_parts, right_parts = [], []
    # Pairs (k, k+offset) inside each block; blocks are contiguous in `order`.
    for offset in range(1, int(size_of.max(initial=1))):
        has_partner = np.flatnonzero(position + offset < size_of)
        if len(has_partner) == 0:
            break
        left_parts.append(order[has_partner])
        right_parts.append(order[has_partner + offset])
    if not left_parts:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, int(oversized.sum()), int(sizes[oversized].sum())
    left, right = np.concatenate(left_parts), np.concatenate(right_parts)
    return np.minimum(left, right), np.maximum(left, right), int(oversized.sum()), int(sizes[oversized].sum())


# An oversized block (one common name: "lee", "wei wang"; one prolific inventor) is not
# dropped: its records are sorted by each of these columns the data has (free-text and
# category columns too) and each is paired with its next REFINING_WINDOW records in that
# order (sorted neighbourhood), so records that share a place, a date, an employer... are
# compared, in a number of pairs linear in the block, and a person with a thousand records
# stays connected.
REFINING_COLUMNS = ("dob", "birth_year", "postcode", "postcode_district", "city", "region", "street",
                    "organisation", "email", "phone", "identifier", "first_name_metaphone", "last_name_metaphone")
# A column refines only if it has this many distinct values (a two-valued gender splits nothing).
MIN_REFINING_VALUES = 20
REFINING_WINDOW = 5


def refining_columns(encoded: ColumnStatistics, rules: Sequence[BlockingRule] = ()) -> list[str]:
    """The refining columns the data has; without those derived from another one (a birth
    year from a date) or that block on their own already (an e-mail rule pairs every record
    sharing an e-mail)."""
    extra = [c for c in encoded.records.columns if c.startswith(("category__", "text__"))]
    present = [c for c in (*REFINING_COLUMNS, *extra)
               if encoded.has(c, 0.02) and len(encoded[c].values) >= MIN_REFINING_VALUES]
    alone = {rule.columns[0] for rule in rules if len(rule.columns) == 1}
    return [c for c in present if c not in alone
            and not any(key_sources().get(c, (c,)) == (other,) for other in present if other != c)]


def _pairs_of_rule(encoded: EncodedRecords, columns: tuple[str, ...], limit: int, new: np.ndarray | None):
    """Pairs of one key combination, the blocking report's counts and the group ids."""
    group = group_ids(encoded, columns)
    if new is not None:
        with_new = np.zeros(int(group.max(initial=-1)) + 1, dtype=bool)
        with_new[group[new & (group >= 0)]] = True
        group = np.where((group >= 0) & with_new[np.maximum(group, 0)], group, -1)
    left, right, skipped, skipped_records = pairs_within_blocks(group, limit)
    left, right = _touching_new(left, right, new)
    return left, right, skipped, skipped_records, group


def _touching_new(left: np.ndarray, right: np.ndarray, new: np.ndarray | None):
    """The pairs with at least one new record (all of them outside an incremental run)."""
    if new is None:
        return left, right
    touching = new[left] | new[right]
    return left[touching], right[touching]


def value_ranks(values: np.ndarray) -> np.ndarray:
    """Each distinct value's rank in string order."""
    return np.argsort(np.argsort(values.astype(str), kind="stable"), kind="stable")


def value_order(encoded: EncodedRecords, column: str) -> np.ndarray:
    """Per record, the rank of its value among the column's values in string order (-1 where
    missing): sorting by it puts alike values side by side ("seoul" beside "seoul")."""
    rank = value_ranks(encoded[column].values)
    codes = encoded[column].codes
    return np.where(codes >= 0, rank[np.maximum(codes, 0)], -1)


def refiners_of_rule(rule: BlockingRule, refiners: Sequence[str]) -> list[str]:
    """The refining columns that split a rule's oversized blocks: not its own columns, nor
    those its columns are derived from."""
    return [column for column in refiners
            if column not in rule.columns and not set(key_sources().get(column, (column,))) <= rule_columns(rule)]


def _in_oversized_blocks(group: np.ndarray, limit: int) -> np.ndarray:
    valid = group >= 0
    sizes = np.bincount(group[valid])
    return valid & (sizes[np.maximum(group, 0)] > limit)


def sorted_neighbour_pairs(group: np.ndarray, order_key: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of records of one group (``group`` >= 0) within ``window`` places of each other
    when the group's records are sorted by ``order_key`` (-1, a missing value, sorts last;
    ties by record index)."""
    members = np.flatnonzero(group >= 0)
    key = np.where(order_key[members] < 0, np.iinfo(np.int64).max, order_key[members].astype(np.int64))
    members = members[np.lexsort((members, key, group[members]))]
    lefts, rights = [np.empty(0, dtype=np.int64)], [np.empty(0, dtype=np.int64)]
    for offset in range(1, min(window, len(members) - 1) + 1):
        same = group[members[:-offset]] == group[members[offset:]]
        lefts.append(members[:-offset][same])
        rights.append(members[offset:][same])
    left, right = np.concatenate(lefts), np.concatenate(rights)
    return np.minimum(left, right), np.maximum(left, right)


def block(encoded: EncodedRecords, rules: list[BlockingRule], link_type: str, max_block_size: int,
          new: np.ndarray | None = None) -> BlockingResult:
    """``new`` (a mask of records): only pairs with at least one new record, as an incremental
    run needs; blocks are sized with every record, so the caps act as in a full run. The
    records of a rule's oversized blocks are paired again by the rule's key plus each
    refining column (``REFINING_COLUMNS``)."""
    n = encoded.n
    keys, reports = [], []
    refiners = refining_columns(encoded, rules)
    orders: dict[str, np.ndarray] = {}  # computed once per column, for every rule that overflows
    for rule in rules:
        limit = min(max_block_size, rule.max_block_size or max_block_size)
        left, right, skipped, skipped_records, group = _pairs_of_rule(encoded, rule.columns, limit, new)
        left, right = filter_link_type(encoded, left, right, link_type)
        keys.append(left * n + right)
        reports.append(RuleReport(rule.name, len(left), skipped, skipped_records))
        if not skipped:
            continue
        oversized_group = np.where(_in_oversized_blocks(group, limit), group, -1)
        for column in refiners_of_rule(rule, refiners):
            if column not in orders:
                orders[column] = value_order(encoded, column)
            left, right = sorted_neighbour_pairs(oversized_group, orders[column], REFINING_WINDOW)
            left, right = filter_link_type(encoded, *_touching_new(left, right, new), link_type)  # type: ignore[call-arg]
            keys.append(left * n + right)
            reports.append(RuleReport(f"{rule.name}, oversized blocks sorted by {column}", len(left), 0, 0))
    combined = _sorted_distinct(np.concatenate(keys)) if keys else np.empty(0, dtype=np.int64)
    return BlockingResult(combined // n, combined % n, reports, possible_pairs(encoded, link_type))


def _sorted_distinct(keys: np.ndarray) -> np.ndarray:
    # An in-place sort and a neighbour test: np.unique's hash path is several times slower
    # on the ~10M pair keys of a 1M-record run.
    keys.sort()
    return keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys


def filter_link_type(encoded: EncodedRecords, left, right, link_type: str):
    if link_type == "link_and_dedupe":
        return left, right
    same = encoded.source_codes[left] == encoded.source_codes[right]
    keep = ~same if link_type == "link_only" else same
    return left[keep], right[keep]


def possible_pairs(encoded: EncodedRecords, link_type: str) -> int:
    n = encoded.n
    per_source = np.bincount(encoded.source_codes)
    within = int(sum(int(k) * (int(k) - 1) // 2 for k in per_source))
    total = n * (n - 1) // 2
    return {"link_and_dedupe": total, "link_only": total - within, "dedupe_only": within}[link_type]


def random_pairs(encoded: EncodedRecords, count: int, link_type: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random record pairs respecting the link type (for estimating u)."""
    rng = np.random.default_rng(seed)
    n = encoded.n
    if n < 2:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    left = rng.integers(0, n, size=int(count * 1.3) + 10)
    right = rng.integers(0, n, size=len(left))
    keep = left != right
    left, right = filter_link_type(encoded, np.minimum(left[keep], right[keep]), np.maximum(left[keep], right[keep]), link_type)
    return left[:count], right[:count]


# Blocks of one probe column's value larger than this are left out of the probe (a common
# surname's sound holds mostly different people).
MAX_PROBE_BLOCK = 2_000


@dataclass
class ProbeSample:
    """Record pairs outside the candidates that share a refining column's value, sampled;
    ``inclusion`` is each pair's chance of being in the sample (for a Horvitz-Thompson sum)."""
    left: np.ndarray
    right: np.ndarray
    inclusion: np.ndarray


def probe_pairs(encoded: EncodedRecords, blocked: BlockingResult, link_type: str, pairs_per_column: int,
                seed: int) -> ProbeSample:
    """Where likely matches that no rule reaches would be: pairs that share any one refining
    column's value (a name's sound, a date, a postcode, an employer...) but were not
    candidates. Per column, records are kept with probability q (q^2 x its pairs is about
    ``pairs_per_column``), so a pair is sampled with probability 1 - prod(1 - q_c^2) over the
    columns it shares."""
    n = encoded.n
    rng = np.random.default_rng(seed)
    known = blocked.left.astype(np.int64) * n + blocked.right  # sorted: blocking returns them so
    columns, rates, usable_values, keys = [], [], [], []
    for column in refining_columns(encoded):
        group = encoded[column].codes.astype(np.int64)  # a block per value
        sizes = encoded[column].counts
        usable = sizes <= MAX_PROBE_BLOCK
        total = int((sizes[usable] * (sizes[usable] - 1) // 2).sum())
        if total == 0:
            continue
        q = min(1.0, float(np.sqrt(pairs_per_column / total)))
        keep = (rng.random(n) < q) & (group >= 0) & usable[np.maximum(group, 0)]
        left, right, _, _ = pairs_within_blocks(np.where(keep, group, -1), MAX_PROBE_BLOCK)
        left, right = filter_link_type(encoded, left, right, link_type)
        columns.append(column)
        rates.append(q * q)
        usable_values.append(usable)
        keys.append(left.astype(np.int64) * n + right)
    if not keys:
        empty = np.empty(0, dtype=np.int64)
        return ProbeSample(empty, empty, np.empty(0))
    distinct = _sorted_distinct(np.concatenate(keys))
    if len(known):
        position = np.searchsorted(known, distinct).clip(max=len(known) - 1)
        distinct = distinct[known[position] != distinct]
    left, right = distinct // n, distinct % n
    missed_by_all = np.ones(len(distinct))
    for column, rate, usable in zip(columns, rates, usable_values):
        codes = encoded[column].codes
        shares = (codes[left] == codes[right]) & (codes[left] >= 0)
        shares &= usable[np.maximum(codes[left], 0)]
        missed_by_all[shares] *= 1.0 - rate
    return ProbeSample(left, right, 1.0 - missed_by_all)
