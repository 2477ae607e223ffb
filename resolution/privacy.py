"""De-identification: keyed pseudonyms for the PII that resolution writes, and masks for logs.

``--pseudonymize`` links on the clear standardised values in memory and replaces them by
keyed hashes before any artifact is written. A pseudonym is HMAC-SHA256 over the column and
the value, under a secret key from the environment (``IDENTIGRAPH_PSEUDONYM_KEY``): the same
e-mail gives the same pseudonym in every run and source with that key, so shared identifiers
still join customers in the graph, while nobody without the key can recompute them from a
guess. The key never leaves the environment; it is not written or printed.

Columns pseudonymized (records.parquet, golden.parquet and what the graph takes from them):
names (keys and display forms, middle names), date of birth, e-mail, phone (national key and E.164),
postcode, street and number, national identifier, and free-text fields (``text__*``). Kept in
clear: postcode district, city, country, gender, categories and organisation names (coarse or
not personal, needed by analysts),
record ids and sources (not personal on their own). quarantine.parquet keeps file, line, id
and reason; its raw row is withheld.
"""
from __future__ import annotations

import hashlib
import hmac
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from identigraph.resolution.semantic_types import PII_COLUMNS, is_pii

PSEUDONYM_KEY_ENV = "IDENTIGRAPH_PSEUDONYM_KEY"
MIN_KEY_CHARACTERS = 16
PSEUDONYM_PREFIX = "ps_"
# Standardised record columns that identify a person (declared by the semantic types).
PII_RECORD_COLUMNS = PII_COLUMNS
WITHHELD_RAW = "(withheld: --pseudonymize)"


class PseudonymKeyError(ValueError):
    """The key is missing or too short; the message says how to set it (never the key)."""


def pseudonym_key_from_env(environ=os.environ) -> bytes:
    key = environ.get(PSEUDONYM_KEY_ENV, "")
    if len(key) < MIN_KEY_CHARACTERS:
        problem = "is not set" if not key else f"is shorter than {MIN_KEY_CHARACTERS} characters"
        raise PseudonymKeyError(
            f"--pseudonymize needs a secret key: {PSEUDONYM_KEY_ENV} {problem}. Set it to a random secret "
            f"(e.g. `export {PSEUDONYM_KEY_ENV}=$(openssl rand -hex 32)`) and keep it: the same key gives "
            "the same pseudonyms in later runs")
    return key.encode("utf-8")


def pseudonym(key: bytes, domain: str, value: str) -> str:
    """The pseudonym of one value; ``domain`` (the column) keeps equal strings of different
    kinds apart."""
    digest = hmac.new(key, f"{domain}\x1f{value}".encode("utf-8"), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:24]


def pseudonymize_array(values: pa.Array | pa.ChunkedArray, key: bytes, domain: str) -> pa.Array:
    """Nulls stay null; each distinct value is hashed once."""
    encoded = pc.dictionary_encode(values)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    dictionary = [pseudonym(key, domain, v) for v in encoded.dictionary.to_pylist()]
    return pa.DictionaryArray.from_arrays(encoded.indices, pa.array(dictionary, type=pa.string())).cast(pa.string())


def record_pii_columns(columns) -> list[str]:
    return [c for c in columns if is_pii(c)]


def pseudonymize_records(table: pa.Table, key: bytes) -> pa.Table:
    for name in record_pii_columns(table.column_names):
        index = table.column_names.index(name)
        table = table.set_column(index, name, pseudonymize_array(table[name], key, name))
    return table


def pseudonymize_frame(frame: pd.DataFrame, key: bytes, domains: dict[str, str]) -> pd.DataFrame:
    """``domains``: column of ``frame`` -> the record column its values come from, so a golden
    e-mail gets the pseudonym its records have."""
    out = frame.copy()
    for column, domain in domains.items():
        if column in out:
            array = pa.array(out[column].astype(object).where(out[column].notna(), None), type=pa.string())
            out[column] = pd.Series(pseudonymize_array(array, key, domain).to_pylist(), index=out.index, dtype=object)
    return out


def mask(value: object) -> str:
    """A value as logs and error messages show it: its first character and its length, so a
    person can tell values apart without reading them ("j…(17)")."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "∅"
    text = str(value)
    return f"{text[:1]}…({len(text)})" if len(text) > 1 else "…"
