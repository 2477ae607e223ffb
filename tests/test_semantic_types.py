"""The semantic-type registry: every stage takes its types from one declaration each."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from identigraph.resolution import semantic_types as st
from identigraph.resolution.blocking import default_rules
from identigraph.resolution.comparisons import ExactMatch
from identigraph.resolution.config import SEMANTIC_TYPES
from identigraph.resolution.encoding import EncodedRecords
from identigraph.resolution.golden import ATTRIBUTES
from identigraph.resolution.infer import ColumnInference, infer_column
from identigraph.resolution.privacy import PII_RECORD_COLUMNS, record_pii_columns

DOCS = Path(__file__).resolve().parents[1] / "docs"


def owned(column: str) -> bool:
    return st.owner_of(column) is not None


def test_every_stage_reads_the_registry():
    assert SEMANTIC_TYPES == st.NAMES
    assert set(st.personal_kinds()) <= set(st.NAMES)
    assert {kind for kind, _ in st.name_patterns()} <= set(st.NAMES)
    assert ATTRIBUTES == st.GOLDEN_ATTRIBUTES
    assert set(PII_RECORD_COLUMNS) == {c for t in st.TYPES for c in t.pii if not c.endswith("__")}


def test_declarations_are_consistent():
    """What a type declares refers to columns some type owns; owned columns are in the
    records' schema (or a per-column prefix); every type is documented."""
    cli_doc = (DOCS / "cli.md").read_text()
    for semantic_type in st.TYPES:
        assert f"`{semantic_type.name}`" in cli_doc, f"{semantic_type.name} is not documented in docs/cli.md"
        for column in semantic_type.owns:
            assert column.endswith("__") or column in st.STANDARD_COLUMNS
        for comparison, needs in semantic_type.comparisons:
            assert all(owned(c) for c in needs) and owned(comparison.column)
        for _, shown, key in semantic_type.golden:
            assert owned(shown) and owned(key)
        for key in semantic_type.blocking_keys:
            assert owned(key.column)
        for _, pattern in semantic_type.name_patterns:
            re.compile(pattern)
    assert all(owned(c) for c in st.STANDARD_COLUMNS)
    assert all(owned(c) for c in st.VALIDITY_COLUMNS.values())


def test_text_columns_are_personal_data_and_categories_are_not():
    columns = ["first_name", "city", "text__birth_place", "category__state", "postcode_district"]
    assert record_pii_columns(columns) == ["first_name", "text__birth_place"]


def test_a_new_type_is_one_declaration(monkeypatch):
    """A type added to the registry is inferred (by its column name and by its values),
    standardised and compared by the existing stages, with no other module changed."""
    licence_plate = st.SemanticType(
        "licence_plate", "A vehicle's registration.", name_patterns=((55, r"^(licen[cs]e_?)?plate|^reg_?no$"),),
        value_detector=st.ValueDetector(r"[A-Z]{2}\d{2} ?[A-Z]{3}", "UK registrations"),
        standardise=lambda source: {"plate": [pc.utf8_upper(a) for a in source.arrays("licence_plate")]},
        owns=("plate",), comparisons=((ExactMatch("plate", "plate"), ("plate",)),),
        blocking_rules=(st.BlockingRule("plate", ("plate",)),))
    monkeypatch.setattr(st, "TYPES", (*st.TYPES, licence_plate))
    plates = pd.Series(["AB12 CDE", "XY70ZZT", "LM05 ABC", "PQ66 RST", "GH19 JKL"] * 4)
    assert infer_column("licence_plate", plates.str.lower()).type == "licence_plate"
    assert infer_column("col_4", plates) == ColumnInference("col_4", "licence_plate", "UK registrations")
    assert infer_column("col_4", plates.str.lower()).type != "licence_plate"  # the detector's pattern decides
    table = pa.table({"reg": ["ab12 cde", None], "given": ["Ann", "Bob"]})
    columns = st.standardise_columns(st.SourceColumns(table, {"licence_plate": ["reg"], "first_name": ["given"]}))
    assert columns["plate"].to_pylist() == ["AB12 CDE", None]
    assert columns["first_name"].to_pylist() == ["ann", "bob"]
    records = pd.DataFrame({"source": ["a", "a"], **{k: v.to_pylist() for k, v in columns.items()}})
    names = [c.name for c in st.default_comparisons(EncodedRecords(records))]
    assert names == ["first_name", "plate"]
    assert [rule.name for rule in default_rules(EncodedRecords(records))] == ["plate"]


def test_several_types_feed_one_column_in_registry_order():
    """A given name from its own column wins over the one split from a full name, and a full
    date of birth over year/month/day columns."""
    table = pa.table({"first": [None, "Ann"], "full": ["Dr John Paul Smith", "Bea Jones"],
                      "dob": ["1630-05-01", None], "by": ["1950", "1961"], "bm": ["2", "3"], "bd": ["7", "9"]})
    by_type = {"first_name": ["first"], "full_name": ["full"], "date_of_birth": ["dob"],
               "birth_year": ["by"], "birth_month": ["bm"], "birth_day": ["bd"]}
    columns = st.standardise_columns(st.SourceColumns(table, by_type))
    assert columns["first_name"].to_pylist() == ["john", "ann"]
    assert columns["middle_name"].to_pylist() == ["paul", None]
    assert columns["last_name"].to_pylist() == ["smith", "jones"]
    assert columns["dob"].to_pylist() == ["1630-05-01", "1961-03-09"]


def test_given_name_columns_keep_middle_names_apart_and_family_names_lose_suffixes():
    """"James D." and "James" are both James (the D a middle initial, unless a middle-name
    column says otherwise); "Anderson, Jr." is Anderson. The display keeps what was written."""
    table = pa.table({"first": ["James D.", "James", "Paul L."], "middle": [None, None, "Lee"],
                      "last": ["Anderson, Jr.", "Anderson", "Valint"]})
    by_type = {"first_name": ["first"], "middle_name": ["middle"], "last_name": ["last"]}
    columns = st.standardise_columns(st.SourceColumns(table, by_type))
    assert columns["first_name"].to_pylist() == ["james", "james", "paul"]
    assert columns["middle_name"].to_pylist() == ["d", None, "lee"]
    assert columns["last_name"].to_pylist() == ["anderson", "anderson", "valint"]
    assert columns["first_name_display"].to_pylist() == ["James D.", "James", "Paul L."]
    assert columns["last_name_display"].to_pylist() == ["Anderson, Jr.", "Anderson", "Valint"]


def test_records_schema_is_unchanged_by_the_registry(tmp_path):
    from identigraph.resolution.config import LinkageConfig, SourceConfig
    from identigraph.resolution.ingest import ingest

    path = tmp_path / "crm.csv"
    path.write_text("id,name,notes\n1,Ann Lee,x\n")
    config = LinkageConfig(sources={"crm": SourceConfig(id_column="id", fields={"name": "full_name",
                                                                                 "notes": "text"})})
    records = ingest([path], config).records
    assert list(records.columns) == ["source", "record_id", *st.STANDARD_COLUMNS, "text__notes"]
