"""One record against a resolved state, in milliseconds: the candidates blocking gives it,
scored with the run's saved model, grouped by customer (``identigraph serve``'s
``POST /v1/match``).

Built once from a resolve run's folder (``RecordMatcher.load``): the standardised records
encoded as the run encodes them, the blocking keys of its default rules with each rule's
records sorted by key, and the statistics a pair's weight reads from the whole population
(term frequencies, values shared by many people, placeholder identifiers). A request then

1. standardises the record as its source's rows are (the fields named by semantic type);
2. finds, rule by rule, the records that share its key (blocks over the rule's size cap are
   skipped, as a batch run skips them);
3. compares it with them over a small population of those records and itself that carries
   the whole population's counts, so every level and weight is the batch run's for the pair;
4. returns each customer with its best pair's probability and per-field weights, and the
   customer the record would join (the best at or above the match threshold).

What differs from a batch run that held the record: its own value is not counted in the
term frequencies (one record in the population), and a pair that only the sorted
neighbourhood of an oversized block produces is not found.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from identigraph.resolution import semantic_types
from identigraph.resolution import standardise as std
from identigraph.resolution.blocking import (
    REFINING_WINDOW,
    add_blocking_keys,
    blocking_key_values,
    default_rules,
    refiners_of_rule,
    refining_columns,
    value_ranks,
)
from identigraph.resolution.config import LinkageConfig, load_config
from identigraph.resolution.encoding import EncodedColumn, EncodedRecords, records_from_arrow
from identigraph.resolution.ingest import TypedValue, record_keys, standardise_typed
from identigraph.resolution.model import (
    SHARED_VALUE_COLUMNS,
    FellegiSunterModel,
    check_model_fits,
    comparison_matrix,
    score,
    shared_values,
)
from identigraph.resolution.semantic_types import BlockingRule, default_comparisons

MAX_CANDIDATES = 2_000  # the most records one request compares (the strongest rules' first)


def _plain_value(value: object) -> object:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


class MatchInputError(ValueError):
    """The record cannot be matched as given; the message names the field."""


@dataclass
class MatchQuery:
    """One record to match: its source, its values by semantic type, and its id where it
    has one (a resolved record is not its own match)."""
    source: str
    fields: dict[str, TypedValue]  # a list where the source has several columns of the type
    record_id: str | None = None


@dataclass
class PairEvidence:
    source: str
    record_id: str
    match_weight: float
    match_probability: float
    field_weights: dict[str, float]


@dataclass
class CandidateCustomer:
    customer_id: str
    match_probability: float
    match_weight: float
    best_record: PairEvidence
    records_compared: int


@dataclass
class MatchResult:
    candidates: list[CandidateCustomer]
    would_join: str | None  # the customer the record joins, None: it would be a new customer
    match_threshold: float
    records_compared: int
    standardised: dict[str, str | None] = field(default_factory=dict)
    values: dict[str, object] = field(default_factory=dict)  # standardised and derived: what ``add`` keeps


@dataclass
class AddedRecord:
    """A record added since start-up: its values as matching reads them and its customer."""
    source: str
    record_id: str
    values: dict[str, object]
    entity: str
    live: bool = True  # False once a newer version replaced it
    erased: bool = False  # erased since (it still belongs to its customer, its values are gone)


@dataclass
class _RuleIndex:
    rule: BlockingRule
    sorted_keys: np.ndarray  # int64 key per record, ascending
    order: np.ndarray  # record row of each sorted key
    radix: list[int]  # values per column + 1, for the mixed-radix key
    hashed: bool  # the key is a hash of the codes (too many combinations for mixed radix)


class RecordMatcher:
    def __init__(self, config: LinkageConfig, model: FellegiSunterModel, encoded: EncodedRecords,
                 entity_of_row: np.ndarray, region: str | None, date_formats: dict[str, list[str]] | None = None,
                 one_to_one_sources: list[str] | None = None):
        self.config, self.model, self.encoded = config, model, encoded
        self.settings = config.model
        self.entity_of_row = entity_of_row
        self.region = region
        self.date_formats = date_formats or {}  # source -> the order the run read its dates in
        # The sources the run linked one-to-one, and per customer its records of each.
        self._once = set(one_to_one_sources or [])
        self._once_count: dict[str, dict[str, int]] = {}
        self.sources = encoded.records["source"].to_numpy(object)
        self.record_ids = encoded.records["record_id"].astype(str).to_numpy(object)
        for row in np.flatnonzero(np.isin(self.sources, list(self._once))).tolist() if self._once else []:
            counts = self._once_count.setdefault(str(entity_of_row[row]), {})
            counts[self.sources[row]] = counts.get(self.sources[row], 0) + 1
        self.comparisons = default_comparisons(encoded)
        check_model_fits(model, self.comparisons, "resolve again with this version of identigraph")
        add_blocking_keys(encoded)
        self.rules = [self._index(rule) for rule in default_rules(encoded)]
        # An oversized block is not skipped: as a batch run does, the record is paired with its
        # REFINING_WINDOW neighbours on each side in the block sorted by each refining column.
        refiners = refining_columns(encoded, [index.rule for index in self.rules])
        self._refiners = {index.rule.name: refiners_of_rule(index.rule, refiners) for index in self.rules}
        used = sorted({column for columns in self._refiners.values() for column in columns})
        self._rank_of_code = {column: value_ranks(encoded[column].values).astype(np.int64) for column in used}
        self._sorted_values = {column: np.sort(encoded[column].values.astype(str)) for column in used}
        self.columns = [c for c in encoded.records.columns if c not in ("source", "record_id")]
        for column in self.columns:  # every column encoded over the whole population, counts and all
            encoded[column]
        # Every encoded column (standardised and derived), its value -> code, built on first
        # use or by ``build_value_codes``.
        self._code_of: dict[str, dict[object, int]] = {}
        # The whole population's verdicts on values, read by comparison_matrix.
        self._shared = {column: shared_values(encoded, column, model.shared_value_limit)
                        for column in SHARED_VALUE_COLUMNS if column in encoded}
        # The fields a record may carry: the semantic types, and the run's own columns of the
        # per-column types (``text__coinventors``), which are named by their column.
        self.types = {t.name for t in semantic_types.TYPES if not any(o.endswith("__") for o in t.owns)}
        self.types |= {c for c in self.columns if c.split("__")[0] in semantic_types.BY_NAME and "__" in c}
        std.clean_text(pa.array(["warm"]))  # builds its per-character table now, not in the first request
        # Records erased or replaced by a newer version since start-up: never candidates.
        self.erased = np.zeros(encoded.n, dtype=bool)
        # Records added since start-up (POST /v1/records), each rule's key -> their positions.
        self.added: list[AddedRecord] = []
        self._added_by_rule: list[dict[tuple, list[int]]] = [{} for _ in self.rules]
        self._live_added: dict[str, int] = {}  # record key -> position of its live version in ``added``
        self._row_of_key: dict[str, int] | None = None  # record key -> row, built on first use
        # Called with (method name, its arguments) after each change (add, reassign, forget):
        # a copy of this matcher in another process replays them to stay the same.
        self.change_listeners: list[Callable[[str, tuple], None]] = []

    @classmethod
    def load(cls, resolved_dir: Path, entities: pd.DataFrame | None = None) -> RecordMatcher:
        """``entities``: the run's entities.parquet where the caller has read it already."""
        resolved_dir = Path(resolved_dir)
        config = load_config(resolved_dir / "linkage.toml")
        model = FellegiSunterModel.from_json(json.loads((resolved_dir / "model.json").read_text()))
        run = json.loads((resolved_dir / "run.json").read_text()) if (resolved_dir / "run.json").exists() else {}
        if run.get("pseudonymized"):
            raise MatchInputError(f"{resolved_dir} holds pseudonyms, not values: records cannot be matched to it")
        table = pq.read_table(resolved_dir / "records.parquet")
        records, encodings = records_from_arrow(table)
        encoded = EncodedRecords(records, table, encodings)
        if entities is None:
            entities = pd.read_parquet(resolved_dir / "entities.parquet", columns=["source", "record_id", "entity_id"])
        key = record_keys(entities["source"], entities["record_id"])
        row_key = record_keys(records["source"], records["record_id"])
        entity_of_row = pd.Series(entities["entity_id"].to_numpy(object), index=key).reindex(row_key).to_numpy(object)
        # The run's own reading of national numbers (run.json of runs before it was recorded: the config's).
        region = config.model.default_phone_region or run.get("phone_region")
        once = run.get("clustering", {}).get("one_to_one", {}).get("linked_one_to_one", [])
        return cls(config, model, encoded, entity_of_row, region, run.get("date_formats"), once)

    # Start-up --------------------------------------------------------------------------
    def _index(self, rule: BlockingRule) -> _RuleIndex:
        codes = [self.encoded[c].codes.astype(np.int64) for c in rule.columns]
        radix = [len(self.encoded[c].values) + 1 for c in rule.columns]
        present = np.ones(self.encoded.n, dtype=bool)
        for c in codes:
            present &= c >= 0
        key = self._key(codes, radix)
        rows = np.flatnonzero(present)
        order = rows[np.argsort(key[rows], kind="stable")]
        return _RuleIndex(rule, key[order], order, radix, float(np.prod([float(r) for r in radix])) >= 2**62)

    @staticmethod
    def _key(codes: list[np.ndarray], radix: list[int]) -> np.ndarray:
        """One int64 per combination of codes: mixed radix while it fits, else a hash (the
        candidates are checked column by column, so a collision adds nothing)."""
        if float(np.prod([float(r) for r in radix])) < 2**62:
            key = codes[0].copy()
            for c, r in zip(codes[1:], radix[1:]):
                key = key * r + c
            return key
        mixed = np.zeros(len(codes[0]), dtype=np.uint64)
        for i, c in enumerate(codes):
            mixed = (mixed ^ (c.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15 + i))) * np.uint64(0xBF58476D1CE4E5B9)
        return mixed.view(np.int64)

    def build_value_codes(self) -> None:
        """Builds every column's value -> code dictionary now (0.4 s and 66 MB at 1M records)
        rather than in the first requests. A server's match process builds its own after the
        fork: a lookup in a dictionary shared with the server writes to the pages of the code
        it returns (its reference count), and each such page is then copied."""
        for column in self.encoded.codes_so_far():
            self._codes_of(column)

    def _codes_of(self, column: str) -> dict[object, int]:
        if column not in self._code_of:
            values = self.encoded[column].values
            self._code_of[column] = dict(zip(values.tolist(), range(len(values))))
        return self._code_of[column]

    def _code(self, column: str, value: object) -> int:
        """The value's code in ``column``, -1 when no record holds it."""
        return -1 if value is None else self._codes_of(column).get(value, -1)

    # Requests ---------------------------------------------------------------------------
    def check(self, query: MatchQuery) -> None:
        """Raises MatchInputError naming what makes the query unmatchable."""
        if not query.source:
            raise MatchInputError("source is required: the system the record comes from")
        unknown = sorted(set(query.fields) - set(self.types))
        if unknown:
            raise MatchInputError(f"unknown field(s) {unknown}: use the semantic types of linkage.toml "
                                  f"({', '.join(sorted(self.types))})")

    def standardise(self, queries: list[MatchQuery]) -> list[dict[str, str | None]]:
        """Each record's standardised columns, as its source's rows would have them
        (``ingest.standardise_typed``: its dates in the order the run read that source's,
        its phone numbers in the run's region), all in one pass."""
        if not queries:
            return []
        columns = standardise_typed([q.fields for q in queries], [q.source for q in queries], self.region,
                                    self.date_formats)
        arrays = {column: columns[column].cast(pa.string()).to_pylist() for column in self.columns if column in columns}
        return [{column: arrays[column][i] if column in arrays else None for column in self.columns}
                for i in range(len(queries))]

    def _derived(self, standardised: list[dict[str, str | None]], sources: list[str]) -> list[dict[str, object]]:
        """Each record's values of the derived columns blocking and comparisons read."""
        return [{**one, **blocking_key_values(one)} for one in standardised]

    def candidates(self, values: list[dict[str, object]], sources: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each record, the rows of the run's records and the positions of the added
        records that share a blocking key with it, rule by rule (the strongest rules' first),
        each rule's keys looked up for all the records at once."""
        blocks = []  # per rule: each record's [start, end) in the rule's sorted keys
        for index in self.rules:
            codes = np.array([[self._code(c, one.get(c)) for c in index.rule.columns] for one in values],
                             dtype=np.int64).reshape(len(values), len(index.rule.columns))
            keys = self._key([codes[:, j] for j in range(codes.shape[1])], index.radix)
            present = (codes >= 0).all(axis=1)
            starts = np.where(present, np.searchsorted(index.sorted_keys, keys, side="left"), 0)
            ends = np.where(present, np.searchsorted(index.sorted_keys, keys, side="right"), 0)
            blocks.append((codes, starts.tolist(), ends.tolist()))
        return [self._candidates_of(i, one, source, blocks) for i, (one, source) in enumerate(zip(values, sources))]

    def _candidates_of(self, i: int, values: dict[str, object], source: str,
                       blocks: list[tuple[np.ndarray, list[int], list[int]]]) -> tuple[np.ndarray, np.ndarray]:
        found: list[np.ndarray] = []
        found_added: list[int] = []
        total = 0
        for index, added, (codes, starts, ends) in zip(self.rules, self._added_by_rule, blocks):
            key_values = tuple(values.get(c) for c in index.rule.columns)
            also = ([a for a in added.get(key_values, []) if self.added[a].live and not self.added[a].erased]
                    if None not in key_values else [])
            start, end = starts[i], ends[i]
            if end - start + len(also) == 0:
                continue
            rows = index.order[start:end]
            if index.hashed:  # a hashed key may collide: check the columns themselves
                for column, code in zip(index.rule.columns, codes[i].tolist()):
                    rows = rows[self.encoded[column].codes[rows] == code]
            limit = min(self.settings.max_block_size, index.rule.max_block_size or self.settings.max_block_size)
            if len(rows) + len(also) + 1 > limit:  # the block the record would make is oversized
                rows = self._neighbours(rows, values, self._refiners[index.rule.name])
            found.append(rows)
            found_added += also
            total += len(rows) + len(also)
            if total >= MAX_CANDIDATES:
                break
        added_found = np.array(sorted(set(found_added)), dtype=np.int64)
        if self.settings.link_type == "link_only":
            added_found = added_found[np.array([self.added[a].source != source for a in added_found.tolist()],
                                               dtype=bool)]
        if not found:
            return np.empty(0, dtype=np.int64), added_found
        rows = pd.unique(np.concatenate(found))  # the rules' order kept: a cut drops the last rules' records
        rows = np.sort(rows[~self.erased[rows]][:MAX_CANDIDATES])
        if self.settings.link_type == "link_only":
            rows = rows[self.sources[rows] != source]
        return rows, added_found

    def _neighbours(self, block: np.ndarray, values: dict[str, object], refiners: list[str]) -> np.ndarray:
        """The records of an oversized block a batch run holding the record would pair it
        with: for each refining column, its REFINING_WINDOW neighbours on each side with the
        block sorted by the column's value (a missing value last; ties by record, the new
        record after the run's, as an incremental run appends it)."""
        block = np.sort(block)
        found = []
        for column in refiners:
            codes = self.encoded[column].codes[block]
            rank = np.where(codes >= 0, self._rank_of_code[column][np.maximum(codes, 0)], -1)
            key = np.where(rank < 0, np.iinfo(np.int64).max, rank)
            members = block[np.lexsort((block, key))]
            sorted_key = np.sort(key)
            value = values.get(column)
            code = self._code(column, value)
            if value is None:
                position = len(members)  # missing sorts last, after the run's missing ones
            elif code >= 0:  # ties: the run's records first
                position = int(np.searchsorted(sorted_key, self._rank_of_code[column][code], side="right"))
            else:  # a value no record holds: after the values below it
                below = int(np.searchsorted(self._sorted_values[column], str(value), side="left"))
                position = int(np.searchsorted(sorted_key, below, side="left"))
            found.append(members[max(0, position - REFINING_WINDOW):position + REFINING_WINDOW])
        return np.unique(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)

    def _population(self, rows: np.ndarray, values: list[dict[str, object]], sources: list[str]) -> EncodedRecords:
        """The candidate ``rows`` then the queried records, encoded with small value tables
        that keep the whole population's counts and size."""
        encodings: dict[str, EncodedColumn] = {}
        columns = list(self.encoded.codes_so_far())
        codes = np.empty((len(columns), len(rows) + len(values)), dtype=np.int64)
        for j, column in enumerate(columns):
            codes[j, :len(rows)] = self.encoded[column].codes[rows]
            codes[j, len(rows):] = [self._code(column, one.get(column)) for one in values]
        present = codes >= 0
        # Each column's values held, numbered in order of their codes: one sort for every
        # column, of (column, code) as one key (codes are int32).
        used, inverse = np.unique((np.arange(len(columns), dtype=np.int64)[:, None] << 32 | codes)[present],
                                  return_inverse=True)
        local = np.full(codes.shape, -1, dtype=np.int64)
        local[present] = inverse
        starts = np.searchsorted(used >> 32, np.arange(len(columns) + 1))
        for j, column in enumerate(columns):
            whole = self.encoded[column]
            held = used[starts[j]:starts[j + 1]] & 0xFFFFFFFF
            local_codes = np.where(present[j], local[j] - starts[j], -1).astype(np.int32)
            local_values, local_counts = list(whole.values[held]), list(whole.counts[held])
            unseen: dict[object, int] = {}
            for i, one in enumerate(values):
                value = one.get(column)
                if codes[j, len(rows) + i] < 0 and value is not None:  # a value no record holds: its own entry, count 0
                    if value not in unseen:
                        unseen[value] = len(local_values)
                        local_values.append(value)
                        local_counts.append(0)
                    local_codes[len(rows) + i] = unseen[value]
            values_array = np.empty(len(local_values), dtype=object)
            values_array[:] = local_values
            encodings[column] = EncodedColumn(local_codes, values_array, np.asarray(local_counts, dtype=whole.counts.dtype))
        frame = {"source": np.append(self.sources[rows], np.array(sources, dtype=object))}
        for column in self.columns:
            if column not in encodings:
                frame[column] = np.append(self.encoded.records[column].to_numpy(object)[rows],
                                          np.array([one.get(column) for one in values], dtype=object))
        # The encoded columns are read from ``encodings`` only: the frame holds the others.
        population = EncodedRecords(pd.DataFrame(frame), encoded=encodings)
        for column, codes_shared in self._shared.items():
            whole_codes = [self._code(column, v) for v in population[column].values.tolist()]
            population.cache[("shared", column, self.model.shared_value_limit)] = np.array(
                [code >= 0 and bool(codes_shared[code]) for code in whole_codes], dtype=bool)
        # Term frequencies are shares of the whole population.
        population.population = self.encoded.population
        return population

    def _changed(self, method: str, arguments: tuple) -> None:
        for listener in self.change_listeners:
            listener(method, arguments)

    def forget(self, erased: list[str]) -> None:
        """Erased records (``source:record_id``) are no longer candidates."""
        for key in erased:
            row = self.row_of(key)
            if row is not None:
                self.erased[row] = True
            if key in self._live_added:
                self.added[self._live_added[key]].erased = True
        self._changed("forget", (erased,))

    def values_of(self, queries: list[MatchQuery]) -> list[dict[str, object]]:
        """What ``add`` keeps of each record (standardised and derived), without matching it."""
        return self._derived(self.standardise(queries), [q.source for q in queries]) if queries else []

    def block_keys(self, values: dict[str, object]) -> set[tuple]:
        """The blocks a record with ``values`` falls in: (rule, key) pairs; two records are
        candidates of each other only where these meet."""
        return {(i, key) for i, index in enumerate(self.rules)
                if None not in (key := tuple(values.get(c) for c in index.rule.columns))}

    def probabilities_between(self, left: list[str], right: list[str],
                              unheld: dict[str, tuple[str, dict[str, object]]] | None = None) -> np.ndarray:
        """The match probability of every pair of a ``left`` record and a ``right`` record,
        named by key: the run's records, those added since, and those of ``unheld`` (key ->
        (source, values)) not held yet. Erased records have no values and no pairs."""
        unheld = unheld or {}
        rows: list[int] = []
        extras: list[tuple[str, dict[str, object]]] = []
        where: dict[str, tuple[str, int]] = {}
        for key in dict.fromkeys([*left, *right]):
            if key in unheld:
                where[key] = ("extra", len(extras))
                extras.append(unheld[key])
            elif key in self._live_added:
                added = self.added[self._live_added[key]]
                if not added.erased:
                    where[key] = ("extra", len(extras))
                    extras.append((added.source, added.values))
            elif (row := self.row_of(key)) is not None and not self.erased[row]:
                where[key] = ("row", len(rows))
                rows.append(row)
        pairs = [(where[a], where[b]) for a in left for b in right if a in where and b in where and a != b]
        if not pairs:
            return np.empty(0, dtype=float)
        population = self._population(np.asarray(rows, dtype=np.int64), [values for _, values in extras],
                                      [source for source, _ in extras])

        def index(place: tuple[str, int]) -> int:  # the population holds the rows, then the extras
            kind, i = place
            return i if kind == "row" else len(rows) + i

        pair_left = np.array([index(a) for a, _ in pairs], dtype=np.int64)
        pair_right = np.array([index(b) for _, b in pairs], dtype=np.int64)
        gamma = comparison_matrix(self.comparisons, population, pair_left, pair_right, self.model.shared_value_limit)
        return np.asarray(score(self.model, gamma, population, self.comparisons, pair_left, pair_right).match_probability)

    def index_record_keys(self) -> dict[str, int]:
        """Record key -> the run's row, built once (a second at 1M records): writes need it."""
        if self._row_of_key is None:
            keys = record_keys(pd.Series(self.sources), pd.Series(self.record_ids)).to_numpy(object)
            self._row_of_key = dict(zip(keys.tolist(), range(len(keys))))
        return self._row_of_key

    def row_of(self, key: str) -> int | None:
        """The run's row of a record key (None: not one of the run's records)."""
        return self.index_record_keys().get(key)

    def live_values(self, key: str) -> dict[str, object] | None:
        """The record's standardised values now: its added version's, else the run's (None:
        erased, or no such record)."""
        if key in self._live_added:
            added = self.added[self._live_added[key]]
            return None if added.erased else {column: added.values.get(column) for column in self.columns}
        row = self.row_of(key)
        if row is None or self.erased[row]:
            return None
        return {column: _plain_value(v) for column, v in self.encoded.records.iloc[row][self.columns].items()}

    def customer_of(self, key: str) -> str | None:
        """The record's customer now, erased or not: an added version's, else the run's (None:
        no such record)."""
        if key in self._live_added:
            return self.added[self._live_added[key]].entity
        row = self.row_of(key)
        return None if row is None else str(self.entity_of_row[row])

    def add(self, source: str, record_id: str, values: dict[str, object], entity: str) -> None:
        """A record written since start-up (``values``: ``MatchResult.values``) becomes a
        candidate of the queries after it; a record already held is replaced."""
        key = f"{source}:{record_id}"
        self._count_once(key, -1)  # the version it replaces, if any
        row = self.row_of(key)
        if row is not None:
            self.erased[row] = True
        if key in self._live_added:
            self.added[self._live_added[key]].live = False
        position = len(self.added)
        self.added.append(AddedRecord(source, record_id, values, entity))
        self._live_added[key] = position
        self._count_once(key, +1)
        for index, added in zip(self.rules, self._added_by_rule):
            key_values = tuple(values.get(c) for c in index.rule.columns)
            if None not in key_values:
                added.setdefault(key_values, []).append(position)
        self._changed("add", (source, record_id, values, entity))

    def reassign(self, customers: dict[str, str]) -> None:
        """Records (key -> customer id) moved by a merge or split."""
        for key, customer in customers.items():
            self._count_once(key, -1)
            if key in self._live_added:
                self.added[self._live_added[key]].entity = customer
            else:
                row = self.row_of(key)
                if row is not None:
                    self.entity_of_row[row] = customer
            self._count_once(key, +1)
        self._changed("reassign", (customers,))

    def _count_once(self, key: str, change: int) -> None:
        """Keeps the count of each customer's records of one-to-one sources as a record
        (``key``, under its customer now) comes or goes."""
        source = key.split(":", 1)[0]
        if source not in self._once:
            return
        entity = self.customer_of(key)
        if entity is not None:
            counts = self._once_count.setdefault(entity, {})
            counts[source] = counts.get(source, 0) + change

    def match(self, source: str, fields: dict[str, TypedValue], record_id: str | None = None) -> MatchResult:
        query = MatchQuery(source, fields, record_id)
        self.check(query)
        return self.match_many([query])[0]

    def match_many(self, queries: list[MatchQuery]) -> list[MatchResult]:
        """Each query's result, as ``match`` gives it alone (checked queries: ``check``):
        standardised, derived, compared and scored together, which costs little more
        than one, so a server answers a burst of requests at once."""
        if not queries:
            return []
        standardised = self.standardise(queries)
        values = self._derived(standardised, [q.source for q in queries])
        found, found_added = [], []
        for query, (rows, added) in zip(queries, self.candidates(values, [q.source for q in queries])):
            if query.record_id is not None:  # the record itself, when it is already resolved, is not its own match
                rows = rows[~((self.sources[rows] == query.source) & (self.record_ids[rows] == str(query.record_id)))]
                added = added[np.array([not (self.added[i].source == query.source and
                                             self.added[i].record_id == str(query.record_id))
                                        for i in added.tolist()], dtype=bool)]
            found.append(rows)
            found_added.append(added)
        threshold = self.settings.match_threshold
        if not any(len(rows) + len(added) for rows, added in zip(found, found_added)):
            return [MatchResult([], None, threshold, 0, standard, one)
                    for standard, one in zip(standardised, values)]
        union, position = np.unique(np.concatenate(found), return_inverse=True)
        added_union, added_position = np.unique(np.concatenate(found_added), return_inverse=True)
        extra = [self.added[i] for i in added_union.tolist()]
        population = self._population(union, [a.values for a in extra] + values,
                                      [a.source for a in extra] + [q.source for q in queries])
        # Each query's pairs: its run rows, then its added records, against the query.
        per_query = [len(rows) + len(added) for rows, added in zip(found, found_added)]
        left_parts, start, added_start = [], 0, 0
        for rows, added in zip(found, found_added):
            left_parts += [position[start:start + len(rows)],
                           len(union) + added_position[added_start:added_start + len(added)]]
            start += len(rows)
            added_start += len(added)
        left = np.concatenate(left_parts).astype(np.int64)
        first_query = len(union) + len(added_union)
        right = np.repeat(first_query + np.arange(len(queries), dtype=np.int64), per_query)
        gamma = comparison_matrix(self.comparisons, population, left, right, self.model.shared_value_limit)
        scored = score(self.model, gamma, population, self.comparisons, left, right)
        names = [c.name for c in self.comparisons]
        results, offset = [], 0
        for query, rows, added, standard, one in zip(queries, found, found_added, standardised, values):
            # Who each pair's candidate is: (source, record id, customer).
            who = [(str(self.sources[r]), str(self.record_ids[r]), str(self.entity_of_row[r])) for r in rows.tolist()]
            who += [(self.added[i].source, self.added[i].record_id, self.added[i].entity) for i in added.tolist()]
            pairs = slice(offset, offset + len(who))
            offset += len(who)
            weight, probability = scored.match_weight[pairs], scored.match_probability[pairs]
            field_weights, levels = scored.field_weights[pairs], gamma[pairs]
            best: dict[str, CandidateCustomer] = {}
            for i in np.argsort(-weight, kind="stable").tolist():
                source, record_id, entity = who[i]
                if entity in best:
                    best[entity].records_compared += 1
                    continue
                evidence = PairEvidence(source, record_id, float(weight[i]), float(probability[i]),
                                        {n: round(float(w), 3) for n, w, g in zip(names, field_weights[i], levels[i])
                                         if g >= 0})
                best[entity] = CandidateCustomer(entity, evidence.match_probability, evidence.match_weight, evidence, 1)
            ranked = sorted(best.values(), key=lambda c: (-c.match_weight, c.customer_id))
            joins = self._joins(query, who, weight, probability)
            results.append(MatchResult(ranked, joins, threshold, len(who), standard, one))
        return results

    def _joins(self, query: MatchQuery, who: list[tuple[str, str, str]], weight: np.ndarray,
               probability: np.ndarray) -> str | None:
        """The customer the record joins: the strongest of its match edges, as the run's
        ``clustering.match_edges`` draws them. A pair at or above the match threshold is one,
        except between two sources the run linked one-to-one: two records of one such source
        never match, and from each other such source the record takes one partner, its best
        at ``one_to_one_threshold`` or above, unless the partner's customer holds a record of
        the record's source already; a partner below the match threshold only where no pair
        between the record and that customer is below even odds."""
        threshold = self.settings.match_threshold
        one_to_one = query.source in self._once
        edges: list[tuple[float, str]] = []
        partner: dict[str, int] = {}  # once source -> its best pair
        lowest: dict[str, float] = {}  # customer -> the lowest probability of its pairs with the record
        for i, (source, _, entity) in enumerate(who):
            lowest[entity] = min(lowest.get(entity, 1.0), float(probability[i]))
            if one_to_one and source in self._once:
                if source != query.source and probability[i] >= self.settings.one_to_one_threshold and (
                        source not in partner or weight[i] > weight[partner[source]]):
                    partner[source] = i
            elif probability[i] >= threshold:
                edges.append((float(weight[i]), entity))
        own = f"{query.source}:{query.record_id}" if query.record_id is not None else None
        for i in partner.values():
            entity = who[i][2]
            held = self._once_count.get(entity, {}).get(query.source, 0)
            if own is not None and self.customer_of(own) == entity:
                held -= 1  # the record itself, already resolved, holds no place
            if held > 0 or (probability[i] < threshold and lowest[entity] < 0.5):
                continue
            edges.append((float(weight[i]), entity))
        return min(edges, key=lambda edge: (-edge[0], edge[1]))[1] if edges else None  # ties: the id sorting first
