"""The Spark engine's work on one Arrow batch: the embedded engine's own functions applied to
a part of the records or of the pairs, with the statistics of the whole run carried in as
columns (``_count__<column>``: records holding the value; ``_shared__<column>``: a phone or
e-mail many people hold). Plain pandas in, pandas out, so each is tested without Spark."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from identigraph.resolution.blocking import add_blocking_keys, group_ids
from identigraph.resolution.clustering import cluster, match_edges
from identigraph.resolution.comparisons import Comparison
from identigraph.resolution.config import SourceConfig
from identigraph.resolution.encoding import EncodedRecords
from identigraph.resolution.ingest import _records_part, key_rank, standardise_source
from identigraph.resolution.linker import entity_ids
from identigraph.resolution.model import (
    SHARED_VALUE_COLUMNS,
    FellegiSunterModel,
    combine_weights,
    comparison_matrix,
    exact_value_frequencies,
    score,
    weights_from_frequencies,
)
from identigraph.resolution.semantic_types import BlockingRule, blocking_keys

COUNT_PREFIX = "_count__"
SHARED_PREFIX = "_shared__"
LEFT, RIGHT = "l__", "r__"


def derived_key_names() -> list[str]:
    """The derived blocking keys ``add_blocking_keys`` adds, in its order."""
    return [key.name for key in blocking_keys()] + ["name_pair"]


def standardise_rows(frame: pd.DataFrame, source: SourceConfig, region: str | None, date_order: list[str],
                     placeholder_dates: tuple[frozenset[str], ...]) -> pd.DataFrame:
    """Records of some rows of one source (``_source`` and ``_record_id`` set, quarantined
    rows gone), standardised as ``ingest`` standardises the whole source: the same date
    order and the placeholder dates judged on the whole column. Keeps ``_idx``."""
    raw = frame.drop(columns=["_source", "_record_id", "_idx"])
    table = pa.Table.from_pandas(raw, preserve_index=False)
    table = pa.table({name: table[name].cast(pa.string()) for name in table.column_names})
    columns = standardise_source(table, source, region, date_order, judge_placeholders=False,
                                 placeholder_dates=placeholder_dates)
    part = _records_part(pa.array(frame["_source"].to_numpy(object), type=pa.string()),
                         pa.array(frame["_record_id"].to_numpy(object), type=pa.string()), columns)
    out = part.to_pandas()
    out["_idx"] = frame["_idx"].to_numpy()
    return out


def with_derived_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """The records with the derived blocking keys (``add_blocking_keys``) as columns."""
    encoded = EncodedRecords(frame.reset_index(drop=True))
    add_blocking_keys(encoded)
    out = frame.copy()
    for name in derived_key_names():
        column = encoded[name]
        out[name] = np.append(column.values, [None])[column.codes]
    return out


def population(records: pd.DataFrame, run_records: int, shared_value_limit: int) -> EncodedRecords:
    """Some of a run's records, encoded to compare and score as in the whole run: the run's
    value counts (``_count__*``), shared values (``_shared__*``) and size."""
    statistics = [c for c in records.columns if c.startswith((COUNT_PREFIX, SHARED_PREFIX))]
    encoded = EncodedRecords(records.drop(columns=statistics).reset_index(drop=True))
    for name in statistics:
        if name.startswith(COUNT_PREFIX):
            encoded.with_counts(name[len(COUNT_PREFIX):], records[name].fillna(0).to_numpy(np.int64))
    for column in SHARED_VALUE_COLUMNS:
        if column not in encoded.records.columns:
            continue
        codes = encoded[column].codes
        shared = np.zeros(len(encoded[column].values), dtype=bool)
        flags = records[SHARED_PREFIX + column].eq(True).to_numpy(bool) if SHARED_PREFIX + column in records else None
        if flags is not None:
            present = codes >= 0
            shared[codes[present]] = flags[present]
        # What ``model.shared_values`` would find over the whole run, where it looks first.
        encoded.cache[("shared", column, shared_value_limit)] = shared
    encoded.population = run_records
    return encoded


def pair_population(pairs: pd.DataFrame, record_columns: list[str], run_records: int, shared_value_limit: int
                    ) -> tuple[EncodedRecords, np.ndarray, np.ndarray]:
    """The records of a batch of pairs (``l__*`` and ``r__*`` columns) as one population in
    record order, and each pair's left and right position in it."""
    left = pairs[[LEFT + c for c in record_columns]].set_axis(record_columns, axis=1)
    right = pairs[[RIGHT + c for c in record_columns]].set_axis(record_columns, axis=1)
    both = pd.concat([left, right], ignore_index=True).drop_duplicates("_idx").sort_values("_idx", kind="stable")
    position = pd.Series(np.arange(len(both)), index=both["_idx"].to_numpy())
    encoded = population(both.drop(columns=["_idx"]), run_records, shared_value_limit)
    return (encoded, position[pairs[LEFT + "_idx"].to_numpy()].to_numpy(),
            position[pairs[RIGHT + "_idx"].to_numpy()].to_numpy())


def compare_pairs(pairs: pd.DataFrame, record_columns: list[str], comparisons: list[Comparison],
                  tf_comparisons: list[str], session_rules: list[BlockingRule], shared_value_limit: int,
                  run_records: int) -> pd.DataFrame:
    """Per pair: its records' ``_idx``, the level of every comparison (``g<j>``), the agreed
    value's share where term-frequency adjusted (``f<j>``) and whether both records share a
    block of each training rule (``s<k>``), which is what training counts."""
    encoded, left, right = pair_population(pairs, record_columns, run_records, shared_value_limit)
    add_blocking_keys(encoded)
    gamma = comparison_matrix(comparisons, encoded, left, right, shared_value_limit)
    frequencies = exact_value_frequencies(tf_comparisons, gamma, encoded, comparisons, left, right)
    out = {"l": pairs[LEFT + "_idx"].to_numpy(np.int64), "r": pairs[RIGHT + "_idx"].to_numpy(np.int64)}
    for j, comparison in enumerate(comparisons):
        out[f"g{j}"] = gamma[:, j].astype(np.int8)
        if comparison.name in tf_comparisons:
            out[f"f{j}"] = frequencies[:, j]
    for k, rule in enumerate(session_rules):
        groups = group_ids(encoded, rule.columns)
        out[f"s{k}"] = (groups[left] == groups[right]) & (groups[left] >= 0)
    return pd.DataFrame(out)


def score_compared(compared: pd.DataFrame, model: FellegiSunterModel, comparisons: list[Comparison]) -> pd.DataFrame:
    """Match weight, probability and per-comparison weights (``w<j>``) of compared pairs."""
    gamma = np.column_stack([compared[f"g{j}"].to_numpy(np.int8) for j in range(len(comparisons))]).reshape(
        len(compared), len(comparisons))
    frequencies = np.full(gamma.shape, np.nan)
    for j in range(len(comparisons)):
        if f"f{j}" in compared:
            frequencies[:, j] = compared[f"f{j}"].to_numpy(np.float64)
    field_weights = weights_from_frequencies(model, gamma, comparisons, frequencies)
    scores = combine_weights(model, gamma, comparisons, field_weights)
    out = compared[["l", "r", *(f"g{j}" for j in range(len(comparisons)))]].copy()
    out["match_weight"] = scores.match_weight
    out["match_probability"] = scores.match_probability
    for j in range(len(comparisons)):
        out[f"w{j}"] = field_weights[:, j]
    return out


def cluster_component(records: pd.DataFrame, pairs: pd.DataFrame, model: FellegiSunterModel,
                      comparisons: list[Comparison], settings, once_sources: list[str], run_records: int
                      ) -> pd.DataFrame:
    """Connected components of the scored pairs (every pair at or above the lower of the
    match and one-to-one thresholds joins one): their match edges (``match_edges``,
    one-to-one where sources hold each entity once) and clusters (``cluster``, with its
    guard and the completion of small clusters), as the embedded engine finds them over all
    records. ``records``: whole components' records; ``pairs``: every scored pair inside
    those components. The report's counts are on the first row."""
    records = records.sort_values("_idx", kind="stable").reset_index(drop=True)
    position = pd.Series(np.arange(len(records)), index=records["_idx"].to_numpy())
    left = position[pairs["l"].to_numpy()].to_numpy()
    right = position[pairs["r"].to_numpy()].to_numpy()
    order = np.lexsort((right, left))  # the embedded engine's pairs are sorted by (left, right)
    left, right = left[order], right[order]
    probability = pairs["match_probability"].to_numpy(np.float64)[order]
    weight = pairs["match_weight"].to_numpy(np.float32)[order]
    keys = (records["source"].astype(str) + ":" + records["record_id"].astype(str)).to_numpy(object)
    rank = key_rank(keys)
    source_codes, source_names = pd.factorize(records["source"])
    once = np.isin(np.asarray(source_names, dtype=object), once_sources)
    match = match_edges(left, right, probability, settings.match_threshold, source_codes.astype(np.int64), once,
                        settings.one_to_one_threshold, rank)
    encoded = population(records.drop(columns=["_idx", "_component", "_bucket"], errors="ignore"), run_records,
                         settings.shared_value_limit)

    def score_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        gamma = comparison_matrix(comparisons, encoded, a, b, settings.shared_value_limit)
        return score(model, gamma, encoded, comparisons, a, b).match_probability

    labels, report = cluster(len(records), left, right, weight, probability, settings.match_threshold,
                        settings.cannot_link_threshold, score_pairs, record_rank=rank, match=match)
    out = pd.DataFrame({"_idx": records["_idx"].to_numpy(np.int64), "entity_id": entity_ids(keys, rank, labels),
                        "cluster_size": np.bincount(labels)[labels].astype(np.int32)})
    # The guard's report, on the first row, for the run's totals.
    for name in CLUSTER_REPORT:
        out[name] = np.zeros(len(out), dtype=np.int64)
        out.loc[0, name] = int(report[name])
    return out


CLUSTER_REPORT = ("components", "pairs_scored_for_completion", "components_split", "records_moved")
