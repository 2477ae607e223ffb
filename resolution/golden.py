"""Golden records: one row per entity, each attribute chosen by survivorship rules.

For every attribute, among the entity's records that have a value: the most frequent value
wins; ties go to the source listed first in the config (source priority), then to the more
complete record, then to values not written all in capitals ("Mallory" over "MALLORY").
Each attribute carries its provenance: the ``source:record_id`` it was taken from.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

# golden attribute: (value column shown, column whose equality defines "the same value")
ATTRIBUTES = {
    "first_name": ("first_name_display", "first_name"),
    "last_name": ("last_name_display", "last_name"),
    "date_of_birth": ("dob", "dob"),
    "email": ("email", "email"),
    "phone": ("phone_e164", "phone"),
    "phone_national": ("phone", "phone"),
    "postcode": ("postcode", "postcode"),
    "street": ("street", "street"),
    "city": ("city", "city"),
    "country": ("country", "country"),
    "gender": ("gender", "gender"),
    "identifier": ("identifier", "identifier"),
}


def golden_records(records: pd.DataFrame, entity_id: np.ndarray, source_priority: list[str]) -> pd.DataFrame:
    rank = {source: i for i, source in enumerate(source_priority)}
    base = pd.DataFrame({
        "entity_id": entity_id,
        "provenance": records["source"].astype(str) + ":" + records["record_id"].astype(str),
        "source_rank": records["source"].map(rank).fillna(len(rank)).to_numpy(),
        "completeness": -records[[v for v, _ in ATTRIBUTES.values() if v in records]].notna().sum(axis=1).to_numpy(),
    })
    golden = base.groupby("entity_id").agg(record_count=("provenance", "size")).reset_index()
    sources = records.groupby(entity_id)["source"].agg(lambda s: ",".join(sorted(set(s))))
    golden["sources"] = golden["entity_id"].map(sources)
    for attribute, (value_column, key_column) in ATTRIBUTES.items():
        if value_column not in records or key_column not in records:
            continue
        frame = base.assign(value=records[value_column].to_numpy(object), key=records[key_column].to_numpy(object))
        frame = frame[frame["value"].notna() & frame["key"].notna()]
        if frame.empty:
            golden[attribute] = None
            golden[f"{attribute}_from"] = None
            continue
        frame["votes"] = frame.groupby(["entity_id", "key"])["key"].transform("size")
        frame["shouting"] = frame["value"].astype(str).str.isupper()
        frame = frame.sort_values(["entity_id", "votes", "source_rank", "completeness", "shouting"],
                                  ascending=[True, False, True, True, True], kind="stable")
        chosen = frame.drop_duplicates("entity_id").set_index("entity_id")
        golden[attribute] = golden["entity_id"].map(chosen["value"])
        golden[f"{attribute}_from"] = golden["entity_id"].map(chosen["provenance"])
    return golden
