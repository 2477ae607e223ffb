"""Golden records: one row per entity, each attribute chosen by survivorship rules.

For every attribute, among the entity's records that have a value: the most frequent value
wins; ties go to the source listed first in the config (source priority), then to the more
complete record, then to values not written all in capitals ("Mallory" over "MALLORY").
Each attribute carries its provenance: the ``source:record_id`` it was taken from.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from identigraph.resolution.semantic_types import GOLDEN_ATTRIBUTES

# golden attribute: (value column shown, column whose equality defines "the same value"),
# declared by the semantic types.
ATTRIBUTES = GOLDEN_ATTRIBUTES


def _chosen_rows(entity: np.ndarray, key: np.ndarray, present: np.ndarray, tie_rank: np.ndarray,
                 shouting: np.ndarray) -> np.ndarray:
    """Row index of the surviving value per entity that has one.

    The rules become one integer per row, (fewer votes, tie rank, shouting, row) from high
    bits to low, and each entity keeps its smallest: one pass instead of a sort per attribute.
    """
    rows = np.flatnonzero(present)
    if len(rows) == 0:
        return rows
    e, k = entity[rows], key[rows]
    pair = e.astype(np.int64) * (int(k.max(initial=0)) + 1) + k
    inverse, _ = pd.factorize(pair)  # hashing: np.unique would sort a million pairs per attribute
    votes = np.bincount(inverse)[inverse]
    row_bits = int(len(entity)).bit_length()
    rank_bits = int(tie_rank.max(initial=0)).bit_length()
    fewer_votes = int(votes.max()) - votes
    if int(fewer_votes.max(initial=0)).bit_length() + rank_bits + 1 + row_bits > 62:
        order = np.lexsort((rows, shouting[rows], tie_rank[rows], -votes, e))
        first = np.r_[True, e[order][1:] != e[order][:-1]]
        return rows[order[first]]
    composite = (((fewer_votes.astype(np.int64) << rank_bits | tie_rank[rows]) << 1 | shouting[rows]) << row_bits) | rows
    best = np.full(int(e.max()) + 1, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(best, e, composite)
    best = best[best != np.iinfo(np.int64).max]
    return best & ((1 << row_bits) - 1)


def golden_records(records: pd.DataFrame, entity_id: np.ndarray, source_priority: list[str],
                   key_codes: dict[str, np.ndarray] | None = None,
                   entity_labels: np.ndarray | None = None) -> pd.DataFrame:
    """``key_codes``: integer codes of standardised columns already factorised by the caller
    (the linker's encoded columns), to save factorising a million strings again;
    ``entity_labels``: integers equal where ``entity_id`` is equal (clustering's labels),
    for the same reason."""
    key_codes = key_codes or {}
    if entity_labels is None:
        entity_codes, entities = pd.factorize(pd.Series(entity_id, dtype=object))
    else:
        entity_codes, _ = pd.factorize(entity_labels)
        _, first = np.unique(entity_codes, return_index=True)
        entities = np.asarray(entity_id, dtype=object)[first]
    entity_codes = entity_codes.astype(np.int64)
    rank = {source: i for i, source in enumerate(source_priority)}
    sources = records["source"].to_numpy(object)
    source_codes, source_names = pd.factorize(pd.Series(sources))
    source_rank = pd.Series(sources).map(rank).fillna(len(rank)).to_numpy().astype(np.int64)
    provenance = (records["source"].astype(str) + ":" + records["record_id"].astype(str)).to_numpy(object)
    value_columns = [v for v, _ in ATTRIBUTES.values() if v in records]
    completeness = records[value_columns].notna().sum(axis=1).to_numpy()
    # Source priority first, then the more complete record: one rank per (source, completeness).
    tie_rank = source_rank * (len(value_columns) + 1) + (len(value_columns) - completeness)

    golden = pd.DataFrame({"entity_id": np.asarray(entities, dtype=object),
                           "record_count": np.bincount(entity_codes, minlength=len(entities))})
    # Sources of each entity as a bit mask, then as "a,b,c" (few sources, many entities).
    mask = np.zeros(len(entities), dtype=np.int64)
    np.bitwise_or.at(mask, entity_codes, (1 << source_codes).astype(np.int64))
    names = sorted(range(len(source_names)), key=lambda i: source_names[i])
    labels = {m: ",".join(source_names[i] for i in names if m >> i & 1) for m in np.unique(mask)}
    golden["sources"] = pd.Series(mask).map(labels).to_numpy(object)

    for attribute, (value_column, key_column) in ATTRIBUTES.items():
        if value_column not in records or key_column not in records:
            continue
        values = records[value_column].to_numpy(object)
        codes = key_codes.get(key_column)
        if codes is None:
            codes = pd.factorize(pd.Series(records[key_column].to_numpy(object)))[0]
        present = codes >= 0
        if value_column != key_column:
            present &= pd.notna(values)
        shouting = np.zeros(len(values), dtype=np.int64)
        # Capitals only break ties, so only entities with more than one candidate row need the test.
        contested = present & (np.bincount(entity_codes[present], minlength=len(entities))[entity_codes] > 1)
        shouting[contested] = pd.Series(values[contested], dtype=object).astype(str).str.isupper().to_numpy()
        chosen = _chosen_rows(entity_codes, codes, present, tie_rank, shouting)
        column = np.full(len(entities), None, dtype=object)
        origin = np.full(len(entities), None, dtype=object)
        column[entity_codes[chosen]] = values[chosen]
        origin[entity_codes[chosen]] = provenance[chosen]
        golden[attribute] = column
        golden[f"{attribute}_from"] = origin
    return golden
