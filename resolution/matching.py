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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from identigraph.resolution import semantic_types
from identigraph.resolution import standardise as std
from identigraph.resolution.blocking import add_blocking_keys, default_rules
from identigraph.resolution.config import LinkageConfig, SourceConfig, load_config
from identigraph.resolution.encoding import EncodedColumn, EncodedRecords, records_from_arrow
from identigraph.resolution.ingest import record_keys, standardise_source
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


class MatchInputError(ValueError):
    """The record cannot be matched as given; the message names the field."""


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


@dataclass
class _RuleIndex:
    rule: BlockingRule
    sorted_keys: np.ndarray  # int64 key per record, ascending
    order: np.ndarray  # record row of each sorted key
    radix: list[int]  # values per column + 1, for the mixed-radix key


class RecordMatcher:
    def __init__(self, config: LinkageConfig, model: FellegiSunterModel, encoded: EncodedRecords,
                 entity_of_row: np.ndarray, region: str | None):
        self.config, self.model, self.encoded = config, model, encoded
        self.settings = config.model
        self.entity_of_row = entity_of_row
        self.region = region
        self.comparisons = default_comparisons(encoded)
        check_model_fits(model, self.comparisons, "resolve again with this version of identigraph")
        add_blocking_keys(encoded)
        self.rules = [self._index(rule) for rule in default_rules(encoded)]
        self.columns = [c for c in encoded.records.columns if c not in ("source", "record_id")]
        for column in self.columns:  # every column encoded over the whole population, counts and all
            encoded[column]
        # Every encoded column (standardised and derived), its value -> code, built on first use.
        self._code_of: dict[str, dict[object, int]] = {}
        # The whole population's verdicts on values, read by comparison_matrix.
        self._shared = {column: shared_values(encoded, column, model.shared_value_limit)
                        for column in SHARED_VALUE_COLUMNS if column in encoded}
        self.types = {t.name for t in semantic_types.TYPES}
        std.clean_text(pa.array(["warm"]))  # builds its per-character table now, not in the first request
        self.erased = np.zeros(encoded.n, dtype=bool)  # records erased since start-up: never candidates
        self.sources = encoded.records["source"].to_numpy(object)
        self.record_ids = encoded.records["record_id"].astype(str).to_numpy(object)

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
        return cls(config, model, encoded, entity_of_row, region)

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
        return _RuleIndex(rule, key[order], order, radix)

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

    def _code(self, column: str, value: object) -> int:
        """The value's code in ``column``, -1 when no record holds it."""
        if value is None:
            return -1
        if column not in self._code_of:
            values = self.encoded[column].values
            self._code_of[column] = dict(zip(values.tolist(), range(len(values))))
        return self._code_of[column].get(value, -1)

    # A request ----------------------------------------------------------------------------
    def standardise(self, source: str, fields: dict[str, str]) -> dict[str, str | None]:
        """The record's standardised columns, as its source's rows would have them."""
        unknown = sorted(set(fields) - set(self.types))
        if unknown:
            raise MatchInputError(f"unknown field(s) {unknown}: use the semantic types of linkage.toml "
                                  f"({', '.join(sorted(self.types))})")
        table = pa.table({name: pa.array([None if v is None else str(v)], type=pa.string())
                          for name, v in fields.items()})
        columns = standardise_source(table, SourceConfig(id_column="", fields={n: n for n in fields}), self.region)
        out: dict[str, str | None] = {}
        for column in self.columns:
            array = columns.get(column)
            out[column] = None if array is None else array.cast(pa.string())[0].as_py()
        return out

    def _derived(self, standardised: dict[str, str | None], source: str) -> dict[str, object]:
        """The record's values of the derived columns blocking and comparisons read."""
        one = EncodedRecords(pd.DataFrame({"source": [source], **{c: [v] for c, v in standardised.items()}}))
        add_blocking_keys(one)  # the run's own derivation, on a population of one
        values: dict[str, object] = dict(standardised)
        for column in one.codes_so_far():
            encoding = one[column]
            values[column] = encoding.values[encoding.codes[0]] if encoding.codes[0] >= 0 else None
        return values

    def candidates(self, values: dict[str, object], source: str) -> np.ndarray:
        found: list[np.ndarray] = []
        total = 0
        for index in self.rules:
            codes = [self._code(c, values.get(c)) for c in index.rule.columns]
            if min(codes) < 0:
                continue
            key = self._key([np.array([c], dtype=np.int64) for c in codes], index.radix)[0]
            start = int(np.searchsorted(index.sorted_keys, key, side="left"))
            end = int(np.searchsorted(index.sorted_keys, key, side="right"))
            if end - start == 0 or end - start > (index.rule.max_block_size or self.settings.max_block_size):
                continue
            rows = index.order[start:end]
            for column, code in zip(index.rule.columns, codes):  # a hashed key may collide
                rows = rows[self.encoded[column].codes[rows] == code]
            found.append(rows)
            total += len(rows)
            if total >= MAX_CANDIDATES:
                break
        if not found:
            return np.empty(0, dtype=np.int64)
        rows = pd.unique(np.concatenate(found))  # the rules' order kept: a cut drops the last rules' records
        rows = np.sort(rows[~self.erased[rows]][:MAX_CANDIDATES])
        if self.settings.link_type == "link_only":
            rows = rows[self.sources[rows] != source]
        return rows

    def _population(self, rows: np.ndarray, values: dict[str, object], source: str) -> EncodedRecords:
        """The candidates and the record (last), encoded with small value tables that keep
        the whole population's counts; n is the population's."""
        encodings: dict[str, EncodedColumn] = {}
        for column in self.encoded.codes_so_far():
            whole = self.encoded[column]
            own = self._code(column, values.get(column))
            codes = np.append(whole.codes[rows], own).astype(np.int64)
            present = codes >= 0
            used, local = np.unique(codes[present], return_inverse=True)
            local_codes = np.full(len(codes), -1, dtype=np.int32)
            local_codes[present] = local
            local_values = whole.values[used]
            local_counts = whole.counts[used]
            value = values.get(column)
            if own < 0 and value is not None:  # a value no record holds: one more entry
                local_codes[-1] = len(local_values)
                local_values = np.append(local_values, np.array([value], dtype=object))
                local_counts = np.append(local_counts, 0)
            encodings[column] = EncodedColumn(local_codes, np.asarray(local_values, dtype=object), local_counts)
        frame = {"source": np.append(self.sources[rows], source)}
        for column in self.columns:
            if column not in encodings:
                frame[column] = np.append(self.encoded.records[column].to_numpy(object)[rows],
                                          np.array([values.get(column)], dtype=object))
        population = EncodedRecords(pd.DataFrame(frame).reindex(columns=["source", *self.columns]),
                                    encoded=encodings)
        for column, codes_shared in self._shared.items():
            whole_codes = [self._code(column, v) for v in population[column].values.tolist()]
            population.cache[("shared", column, self.model.shared_value_limit)] = np.array(
                [code >= 0 and bool(codes_shared[code]) for code in whole_codes], dtype=bool)
        # Term frequencies are counts over n: the whole population's. The small population is
        # only compared and scored (nothing sized by n is built from it).
        population.n = self.encoded.n
        return population

    def forget(self, erased: list[str]) -> None:
        """Erased records (``source:record_id``) are no longer candidates."""
        keys = record_keys(pd.Series(self.sources), pd.Series(self.record_ids))
        self.erased |= keys.isin(set(erased)).to_numpy()

    def match(self, source: str, fields: dict[str, str], record_id: str | None = None) -> MatchResult:
        if not source:
            raise MatchInputError("source is required: the system the record comes from")
        standardised = self.standardise(source, fields)
        values = self._derived(standardised, source)
        rows = self.candidates(values, source)
        if record_id is not None:  # the record itself, when it is already resolved, is not its own match
            same = (self.sources[rows] == source) & (self.record_ids[rows] == str(record_id))
            rows = rows[~same]
        threshold = self.settings.match_threshold
        if len(rows) == 0:
            return MatchResult([], None, threshold, 0, standardised)
        population = self._population(rows, values, source)
        left = np.arange(len(rows), dtype=np.int64)
        right = np.full(len(rows), len(rows), dtype=np.int64)
        gamma = comparison_matrix(self.comparisons, population, left, right, self.model.shared_value_limit)
        scored = score(self.model, gamma, population, self.comparisons, left, right)
        names = [c.name for c in self.comparisons]
        sources, record_ids = self.sources[rows], self.record_ids[rows]
        entities = self.entity_of_row[rows]
        best: dict[str, CandidateCustomer] = {}
        for i in np.argsort(-scored.match_weight, kind="stable").tolist():
            entity = str(entities[i])
            if entity in best:
                best[entity].records_compared += 1
                continue
            evidence = PairEvidence(str(sources[i]), str(record_ids[i]), float(scored.match_weight[i]),
                                    float(scored.match_probability[i]),
                                    {n: round(float(w), 3) for n, w, g in zip(names, scored.field_weights[i], gamma[i])
                                     if g >= 0})
            best[entity] = CandidateCustomer(entity, evidence.match_probability, evidence.match_weight, evidence, 1)
        ranked = sorted(best.values(), key=lambda c: (-c.match_weight, c.customer_id))
        joins = ranked[0].customer_id if ranked and ranked[0].match_probability >= threshold else None
        return MatchResult(ranked, joins, threshold, len(rows), standardised)
