"""Inferring a linkage config from column names *and values*, for runs without ``--config``.

A column's name proposes a type; its values confirm it or overrule it: a column named
``birth_place`` full of town names is not a date, and ``fname_c1`` full of given names is a
given name whatever it is called. Every column gets a type and the evidence for it
(``ColumnInference``), which ``identigraph resolve`` prints. The result is written next to
the outputs as ``linkage.toml`` so a person can check it, edit it and run again with
``--config``.
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import pandas as pd
from unidecode import unidecode

from identigraph.resolution import semantic_types
from identigraph.resolution.config import ROW_NUMBER, LinkageConfig, SourceConfig
from identigraph.resolution.io import read_sample

# Each type's column-name patterns, value detector and kind of identifying data are declared
# in ``resolution.semantic_types`` and read from there at every call (a type added to the
# registry is inferred too). A file is about people (or organisations) when it has at least
# two kinds of identifying data (a product catalogue has a "name" but nothing else of a person).
ID_PATTERN = re.compile(r"(^|_)(id|ref|no|key|number)$|^unique_?id$|^rec_?id$")
# A column naming the system each row came from (one file gathering several sources).
SOURCE_PATTERN = re.compile(r"^(source|data_?source|source_?(system|name|db|dataset|file)|src|dataset|origin_?system)$")
# Sources name few values, each on many rows.
MAX_SOURCES = 50
# Columns naming a person by their role at an organisation (a site's director, an account's
# contact): in a file of organisations they describe the organisation, not the record's subject.
ROLE_PATTERN = re.compile(r"director|manager|contact|owner|principal|officer|administrator|agent|ceo|president|"
                          r"chair|coordinator|supervisor|representative|(^|_)rep(_|$)")
PERSON_NAME_TYPES = ("first_name", "middle_name", "last_name", "full_name")
# How exports write a missing value; not evidence of any type.
NULL_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "none", "-", "?"})
# Shares of a column's values that confirm a type.
CONFIRM = 0.5  # a name's proposal stands when this share of values fits it
RECOGNISE = 0.6  # values alone decide when this share fits


@dataclass(frozen=True)
class ColumnInference:
    column: str
    type: str
    evidence: str


@dataclass(frozen=True)
class SourceInference:
    file: str
    id_column: str  # ROW_NUMBER ("") when no column is unique on every row
    id_evidence: str
    columns: list[ColumnInference]
    personal: bool  # about people or organisations: linked; else skipped (orders, products)
    source_column: str | None = None  # a column naming each row's source, when the file gathers several


def _fold(text: str) -> str:
    return re.sub(r"[^a-z ]", "", unidecode(text).lower()).strip()


@lru_cache(maxsize=1)
def name_lexicon() -> tuple[frozenset[str], frozenset[str]]:
    """(given names, family names) of the ~110 locales Faker ships, folded to ASCII lower
    case, plus the given names of the `nicknames` data set: a multi-locale list to
    recognise a column of names by its values."""
    from faker.config import AVAILABLE_LOCALES

    from identigraph.resolution.comparisons import nickname_pairs

    def strings(value) -> list[str]:
        if isinstance(value, dict):
            value = list(value)
        return [v for v in value if isinstance(v, str)] if isinstance(value, (tuple, list, set, frozenset)) else []

    given: set[str] = set()
    family: set[str] = set()
    for locale in AVAILABLE_LOCALES:
        try:
            provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        except (ImportError, AttributeError):
            continue
        for attribute in ("first_names", "first_names_male", "first_names_female"):
            given.update(_fold(v) for v in strings(getattr(provider, attribute, ())))
        family.update(_fold(v) for v in strings(getattr(provider, "last_names", ())))
    given.update(name for pair in nickname_pairs() for name in pair)
    return frozenset(given - {""}), frozenset(family - {""})


def _share(values: pd.Series, test) -> float:
    return float(values.map(test).mean()) if len(values) else 0.0


def _name_shares(values: pd.Series) -> tuple[float, float, float]:
    """Shares of values whose first token is a known given name, whose last token is a known
    family name, and that hold two tokens or more."""
    given, family = name_lexicon()
    # "Last, First" reads as "First Last".
    tokens = values.map(lambda v: _fold(" ".join(reversed(v.split(",", 1)))).split())
    return (_share(tokens, lambda t: bool(t) and t[0] in given),
            _share(tokens, lambda t: bool(t) and t[-1] in family),
            _share(tokens, lambda t: len(t) >= 2))


def _date_share(values: pd.Series) -> float:
    from identigraph.resolution.standardise import parse_dates

    return float(pd.Series(parse_dates(values.tolist()).to_pylist()).notna().mean()) if len(values) else 0.0


def _integers(values: pd.Series) -> pd.Series | None:
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.isna().mean() > 0.05 or not (numbers.dropna() % 1 == 0).all():
        return None
    return numbers.dropna()


def _in_range(values: pd.Series, low: int, high: int, min_distinct: int) -> bool:
    """Whole numbers, nearly all between ``low`` and ``high`` (a typo like 2062 for 1962 is
    data, not a reason to doubt the column), with some variety."""
    numbers = _integers(values)
    return numbers is not None and len(numbers) > 0 and numbers.between(low, high).mean() >= 0.95 and \
        numbers.nunique() >= min(min_distinct, max(2, len(numbers) // 3))


def _looks_like_names(values: pd.Series) -> tuple[str, str] | None:
    """(type, evidence) when the values are given names, family names or full names."""
    given, family, multi = _name_shares(values)
    if multi >= CONFIRM and given >= CONFIRM:
        return "full_name", f"{given:.0%} start with a known given name, {multi:.0%} have several words"
    if given >= RECOGNISE and given > family:
        return "first_name", f"{given:.0%} are known given names"
    if family >= RECOGNISE and family > given:
        return "last_name", f"{family:.0%} are known family names"
    return None


def infer_column(name: str, values: pd.Series) -> ColumnInference:
    """The type of one column and why: its name proposes, its values confirm or overrule."""
    lowered = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    sample = values.dropna().astype(str).str.strip()
    sample = sample[~sample.str.lower().isin(NULL_MARKERS)].head(500)
    proposed = next((kind for kind, pattern in semantic_types.name_patterns() if re.search(pattern, lowered)), None)
    if len(sample) == 0:
        return ColumnInference(name, "ignore", "no values")
    year = date.today().year
    if proposed == "ignore":
        return ColumnInference(name, "ignore", "named like a timestamp, title or note")
    if proposed == "birth_year" and _in_range(sample, 1000, year, 5):
        return ColumnInference(name, "birth_year", f"named like a birth year; years {sample.min()}–{sample.max()}")
    if proposed == "birth_month" and _in_range(sample, 1, 12, 6):
        return ColumnInference(name, "birth_month", "named like a birth month; whole numbers 1–12")
    if proposed == "birth_day" and _in_range(sample, 1, 31, 15):
        return ColumnInference(name, "birth_day", "named like a birth day; whole numbers 1–31")
    if proposed in ("date_of_birth", "birth_year", "birth_month", "birth_day"):
        share = _date_share(sample)
        if share >= CONFIRM:
            return ColumnInference(name, "date_of_birth", f"named like a birth date; {share:.0%} parse as dates")
        names = _looks_like_names(sample)
        if names:
            return ColumnInference(name, names[0], f"named like a birth date but {names[1]}")
        return ColumnInference(name, "text", f"named like a birth date but only {share:.0%} parse as dates "
                                             "(a birth place?): compared as text")
    if proposed in ("first_name", "middle_name", "last_name", "full_name"):
        names = _looks_like_names(sample)
        if proposed == "full_name" and names is None:
            given, _, _ = _name_shares(sample)
            return ColumnInference(name, "organisation_name",
                                   f"named 'name' but only {given:.0%} start with a known given name")
        if names and names[0] != proposed and proposed != "middle_name" and {names[0], proposed} != {
                "first_name", "full_name"}:
            return ColumnInference(name, names[0], f"named like a {proposed} but {names[1]}")
        return ColumnInference(name, proposed, f"named like a {proposed}" + (f"; {names[1]}" if names else ""))
    detected = _detected_by_values(name, sample, before_name=True)
    if detected:
        return detected
    if proposed is not None:
        return ColumnInference(name, proposed, f"named like a {proposed}")
    if _date_share(sample) > 0.8:
        return ColumnInference(name, "ignore", "dates, not named like a birth date (an event's date says nothing "
                                               "of who someone is)")
    detected = _detected_by_values(name, sample, before_name=False)
    if detected:
        return detected
    names = _looks_like_names(sample)
    if names:
        return ColumnInference(name, names[0], names[1])
    distinct = sample.str.lower().nunique()
    if len(sample) >= 50 and distinct <= max(2, len(sample) // 10):
        return ColumnInference(name, "category", f"{distinct} distinct values in {len(sample)} rows: compared exactly")
    if sample.str.len().mean() < 60:
        return ColumnInference(name, "text", "short free text")
    return ColumnInference(name, "ignore", "long free text")


def _detected_by_values(name: str, sample: pd.Series, before_name: bool) -> ColumnInference | None:
    """The first type (registry order) whose value detector the sample fits."""
    for kind, detector in semantic_types.value_detectors():
        if detector.before_name == before_name and sample.str.fullmatch(detector.pattern).mean() > detector.share:
            return ColumnInference(name, kind, detector.evidence)
    return None


def infer_column_type(name: str, values: pd.Series) -> str:
    return infer_column(name, values).type


def _complete_birth_date_parts(columns: list[ColumnInference], sample: pd.DataFrame) -> list[ColumnInference]:
    """Year, month and day of birth in three columns whose names say little (``by``,
    ``bm``, ``bd``): three whole-number columns side by side, one of years, one of 1–12, one
    of 1–31, in a file with names and no full date."""
    kinds = {c.type for c in columns}
    if "date_of_birth" in kinds or "birth_year" in kinds or not kinds & {"first_name", "last_name", "full_name"}:
        return columns
    year = date.today().year
    loose = [c for c in columns if c.type in ("text", "ignore", "category")]
    found = {}
    for column in loose:
        values = sample[column.column].dropna().astype(str).str.strip()
        values = values[~values.str.lower().isin(NULL_MARKERS)]
        if "birth_year" not in found and _in_range(values, 1000, year, 10):
            found["birth_year"] = column.column
        elif "birth_month" not in found and _in_range(values, 1, 12, 8):
            found["birth_month"] = column.column
        elif "birth_day" not in found and _in_range(values, 1, 31, 20):
            found["birth_day"] = column.column
    if len(found) < 3:
        return columns
    by_column = {column: kind for kind, column in found.items()}
    return [ColumnInference(c.column, by_column[c.column], "year, month and day of birth as three whole-number "
                                                           "columns (years, 1–12, 1–31)")
            if c.column in by_column else c for c in columns]


def _people_in_roles_as_text(columns: list[ColumnInference]) -> list[ColumnInference]:
    """In a file of organisations (an organisation-name column), person names in columns named
    by a role ("Director", "Contact person") are compared as text: the records are the
    organisations, and linking them as people would block and score them on the director."""
    if not any(c.type == "organisation_name" for c in columns):
        return columns
    def role(c: ColumnInference) -> bool:
        return c.type in PERSON_NAME_TYPES and bool(ROLE_PATTERN.search(re.sub(r"[^a-z0-9]+", "_", c.column.lower())))
    return [ColumnInference(c.column, "text", f"{c.evidence}; a person in a role at the organisation the record "
                                              "is about: compared as text") if role(c) else c for c in columns]


def infer_id_column(frame: pd.DataFrame) -> tuple[str, str]:
    """(id column, evidence); ``ROW_NUMBER`` when no column is unique on every row."""
    for column in frame.columns:
        lowered = re.sub(r"[^a-z0-9]+", "_", column.lower()).strip("_")
        values = frame[column].dropna()
        if ID_PATTERN.search(lowered) and len(values) == len(frame) and values.is_unique:
            return column, "named like an id, unique on every row"
    for column in frame.columns:
        values = frame[column].dropna()
        if len(values) == len(frame) and values.is_unique:
            return column, "unique on every row"
    return ROW_NUMBER, "no column is unique on every row: records are numbered by row (first data row = 1)"


def infer_source_column(frame: pd.DataFrame, id_column: str) -> str | None:
    """A column named like a data source (``source``, ``data_source``, ``src``...) holding
    few values, each on several rows: the file gathers records of several systems."""
    for column in frame.columns:
        lowered = re.sub(r"[^a-z0-9]+", "_", column.lower()).strip("_")
        values = frame[column].dropna().astype(str).str.strip()
        values = values[values != ""]
        if column != id_column and SOURCE_PATTERN.search(lowered) and len(values) and \
                values.nunique() <= min(MAX_SOURCES, max(1, len(values) // 5)):
            return column
    return None


def infer_source(path: Path) -> SourceInference:
    sample = read_sample(path)
    id_column, id_evidence = infer_id_column(sample)
    source_column = infer_source_column(sample, id_column)
    columns = [infer_column(c, sample[c]) for c in sample.columns if c not in (id_column, source_column)]
    columns = _complete_birth_date_parts(columns, sample)
    columns = _people_in_roles_as_text(columns)
    if id_column != ROW_NUMBER and infer_column_type(id_column, sample[id_column]) == "identifier":
        # A store keyed by loyalty number: the key is also evidence against other
        # channels that record the same card.
        columns.append(ColumnInference(id_column, "identifier", "the id column is named like an identifier"))
    personal = semantic_types.personal_kinds()
    kinds = {personal[c.type] for c in columns if c.type in personal}
    return SourceInference(path.name, id_column, id_evidence, columns, personal=len(kinds) >= 2,
                           source_column=source_column)


def infer_sources(files: list[Path]) -> dict[str, SourceInference]:
    inferred = {path.stem: infer_source(path) for path in files}
    return _harmonise_loose_types(inferred, {path.stem: len(read_sample(path)) for path in files})


def _harmonise_loose_types(inferred: dict[str, SourceInference], rows: dict[str, int]) -> dict[str, SourceInference]:
    """A column of one name judged only by its spread of values (category in one file, text in
    another) gets one type, the one its largest sample gave: the two sources then compare it."""
    loose = ("category", "text")
    choice: dict[str, tuple[int, str]] = {}
    for stem, source in inferred.items():
        for column in source.columns:
            if column.type in loose and rows[stem] > choice.get(column.column, (-1, ""))[0]:
                choice[column.column] = (rows[stem], column.type)
    for stem, source in inferred.items():
        columns = [ColumnInference(c.column, choice[c.column][1], f"{c.evidence}; {choice[c.column][1]} as in the "
                                                                   "largest file with this column")
                   if c.type in loose and choice[c.column][1] != c.type else c for c in source.columns]
        inferred[stem] = SourceInference(source.file, source.id_column, source.id_evidence, columns, source.personal,
                                         source.source_column)
    return inferred


def config_from_inference(inferred: dict[str, SourceInference]) -> LinkageConfig:
    """One [sources.<stem>] table per file about people or organisations."""
    sources = {stem: SourceConfig(id_column=source.id_column, fields={c.column: c.type for c in source.columns},
                                  source_column=source.source_column)
               for stem, source in inferred.items() if source.personal}
    if not sources:
        raise ValueError("none of the inputs has columns that look like personal or organisation data (names, "
                         "dates of birth, e-mails, phones, addresses); write a config that maps them")
    return LinkageConfig(sources=sources)


def infer_config(files: list[Path]) -> LinkageConfig:
    return config_from_inference(infer_sources(files))


def inference_notes(inferred: dict[str, SourceInference]) -> str:
    """Each column's type and evidence, one line each (the inferred linkage.toml's header)."""
    lines = []
    for source in inferred.values():
        verdict = "linked" if source.personal else "skipped: not about people or organisations"
        lines.append(f"{source.file} ({verdict}); id: {source.id_column or '(row number)'}: {source.id_evidence}")
        if source.source_column:
            lines.append(f"  {source.source_column}: names each row's source (few values, each on many rows)")
        lines += [f"  {c.column} = {c.type}: {c.evidence}" for c in source.columns]
    return "\n".join(lines)
