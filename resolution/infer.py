"""Inferring a linkage config from column names and values, for runs without ``--config``.

The result is written next to the outputs as ``linkage.toml`` so a person can check it,
edit it and run again with ``--config``.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from resolution.config import LinkageConfig, SourceConfig
from resolution.io import read_sample

# (semantic type, column-name pattern), first match wins; names are lower-cased first.
NAME_PATTERNS: tuple[tuple[str, str], ...] = (
    ("ignore", r"(created|updated|modified|signup|registered|joined|call)_?(at|on|ts|date|time)?$|_ts$|_at$|timestamp|^notes?$|^reason$|^comment"),
    # "Mr"/"Mrs" say little about who someone is and disagree across channels.
    ("ignore", r"^(title|salutation|honorific|name_?(prefix|suffix))$"),
    ("date_of_birth", r"dob|birth|bday"),
    ("email", r"e_?mail"),
    ("phone", r"phone|mobile|^tel|telephone|cell"),
    ("first_name", r"^(first|given|fore)_?(name)?$|^fname$|^first_?name"),
    ("last_name", r"^(last|family|sur)_?(name)?$|^lname$|^surname$"),
    ("full_name", r"^(full_?)?name$|^customer_?name$|^person_?name$"),
    ("postcode", r"post_?code|^zip|postal"),
    ("text", r"(street|house|building|flat)_?(number|no|num)$|address_?[2-9]$|line_?[2-9]$"),
    ("identifier", r"soc_?sec|ssn|national_?id|passport|loyalty_?(card|no|number)|nhs|tax_?id|licen[cs]e"),
    ("street_address", r"address|street|addr|line_?1"),
    ("city", r"city|town|suburb|locality"),
    ("country", r"country"),
    ("gender", r"gender|^sex$"),
    ("category", r"^state$|county|region|province"),
)
# Kinds of personal data; a file is about people when it has at least two of them (a
# product catalogue has a "name" but nothing else of a person).
PERSONAL_KINDS = {"first_name": "name", "last_name": "name", "full_name": "name", "date_of_birth": "dob",
                  "email": "email", "phone": "phone", "postcode": "address", "street_address": "address",
                  "identifier": "identifier"}
ID_PATTERN = re.compile(r"(^|_)(id|ref|no|key|number)$|^unique_?id$|^rec_?id$")


def infer_column_type(name: str, values: pd.Series) -> str:
    lowered = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    for kind, pattern in NAME_PATTERNS:
        if re.search(pattern, lowered):
            return kind
    sample = values.dropna().astype(str).head(500)
    if len(sample) == 0:
        return "ignore"
    if sample.str.contains("@").mean() > 0.8:
        return "email"
    if sample.str.fullmatch(r"\+?[\d\s\-().]{7,}").mean() > 0.8:
        return "phone"
    if sample.str.fullmatch(r"\d{1,6}[a-zA-Z]?").mean() > 0.8:
        return "text"  # house numbers, flat numbers: compared fuzzily
    return "text" if sample.str.len().mean() < 60 else "ignore"


def infer_id_column(frame: pd.DataFrame) -> str:
    for column in frame.columns:
        lowered = re.sub(r"[^a-z0-9]+", "_", column.lower()).strip("_")
        values = frame[column].dropna()
        if ID_PATTERN.search(lowered) and len(values) == len(frame) and values.is_unique:
            return column
    for column in frame.columns:
        values = frame[column].dropna()
        if len(values) == len(frame) and values.is_unique:
            return column
    raise ValueError("no column has a unique value on every row to serve as the record id; "
                     "write a config with id_column")


def infer_config(files: list[Path]) -> LinkageConfig:
    """One [sources.<stem>] table per file."""
    sources = {}
    for path in files:
        sample = read_sample(path)
        id_column = infer_id_column(sample)
        fields = {c: infer_column_type(c, sample[c]) for c in sample.columns if c != id_column}
        if infer_column_type(id_column, sample[id_column]) == "identifier":
            # A store keyed by loyalty number: the key is also evidence against other
            # channels that record the same card.
            fields[id_column] = "identifier"
        if len({PERSONAL_KINDS[k] for k in fields.values() if k in PERSONAL_KINDS}) < 2:
            continue  # not a file about people (orders, sessions, products)
        sources[path.stem] = SourceConfig(id_column=id_column, fields=fields)
    if not sources:
        raise ValueError("none of the inputs has columns that look like personal data (names, dates of "
                         "birth, e-mails, phones, addresses); write a config that maps them")
    return LinkageConfig(sources=sources)
