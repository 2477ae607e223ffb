"""One-to-one linking of sources that hold each entity once (a guide lists a restaurant
once, a voter-file snapshot a voter once): judged from the matches, each record links to its
best partner in each other source, and two records of one such source never merge."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from identigraph.resolution.clustering import match_edges, sources_holding_entities_once
from identigraph.resolution.config import ConfigError, parse_config
from identigraph.resolution.evaluation import evaluate_entities
from identigraph.resolution.linker import Linker

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_each_record_links_to_its_best_partner_in_each_other_source():
    # Source 0: records 0, 1; source 1: records 2, 3; source 2: record 4.
    source = np.array([0, 0, 1, 1, 2])
    left, right = np.array([0, 0, 1, 0, 0]), np.array([2, 3, 3, 1, 4])
    probability = np.array([0.95, 0.70, 0.60, 0.99, 0.55])
    once = np.array([True, True, True])
    match = match_edges(left, right, probability, 0.9, source, once, 0.5)
    # 0-2 is 0's best in source 1; 1-3 is then the best left for 1 and 3, at even odds or
    # more; 0-3 loses to 0-2; 0-1 is inside one source; 0-4 links 0 into source 2.
    assert match.tolist() == [True, False, True, False, True]
    # Sources not judged to hold entities once keep the plain threshold.
    plain = match_edges(left, right, probability, 0.9, source, np.array([False, False, False]), 0.5)
    assert plain.tolist() == (probability >= 0.9).tolist()
    # A partner below the match threshold does not join a cluster holding a record it is
    # unlike: 2-4 below even odds keeps 4 out of {0, 2}; above the threshold it would join.
    left, right, probability = np.r_[left, 2], np.r_[right, 4], np.r_[probability, 0.40]
    assert match_edges(left, right, probability, 0.9, source, once, 0.5).tolist()[4] is False
    probability[4] = 0.93
    assert match_edges(left, right, probability, 0.9, source, once, 0.5).tolist()[4] is True


def test_a_source_with_duplicates_beyond_the_matches_doubt_is_not_linked_one_to_one():
    rng = np.random.default_rng(3)
    n = 400  # records 0..199 in source 0, 200..399 in source 1, record i's twin is i + 200
    source = np.repeat([0, 1], n // 2)
    left, right = np.arange(n // 2), np.arange(n // 2) + n // 2
    probability = rng.uniform(0.97, 1.0, n // 2)
    once, report = sources_holding_entities_once(source, left, right, probability, 0.9)
    assert once.tolist() == [True, True]
    assert report["second_record_events"] == [0, 0]
    # Source 1 holds 30 entities twice: records 400..429 are second records of 200..229,
    # matched by their twin in source 0 and by the first record inside source 1.
    source = np.r_[source, np.ones(30, dtype=int)]
    extra = np.arange(400, 430)
    left = np.r_[left, np.arange(30), np.arange(200, 230)]
    right = np.r_[right, extra, extra]
    probability = np.r_[probability, np.full(60, 0.98)]
    once, report = sources_holding_entities_once(source, left, right, probability, 0.9)
    assert once.tolist() == [True, False]
    assert report["with_a_second_record"][1] == 60
    # One false match between two records of one source is what the doubt explains.
    source = np.repeat([0, 1], n // 2)
    left, right = np.r_[np.arange(n // 2), 300], np.r_[np.arange(n // 2) + n // 2, 301]
    probability = np.r_[rng.uniform(0.9, 1.0, n // 2), 0.95]
    once, _ = sources_holding_entities_once(source, left, right, probability, 0.9)
    assert once.tolist() == [True, True]


def test_one_source_has_nothing_to_link_one_to_one():
    once, _ = sources_holding_entities_once(np.zeros(4, dtype=int), np.array([0, 2]), np.array([1, 3]),
                                            np.array([0.99, 0.99]), 0.9)
    assert once.tolist() == [False]


def test_the_one_to_one_setting_is_validated():
    base = {"fields": {"name": "organisation_name"}}
    assert parse_config({**base, "model": {"one_to_one": True}}).model.one_to_one is True
    assert parse_config(base).model.one_to_one == "auto"
    with pytest.raises(ConfigError, match="one_to_one"):
        parse_config({**base, "model": {"one_to_one": "sometimes"}})


@pytest.mark.skipif(not (SHARED_DATA / "fodors_zagat").is_dir(), reason="needs ../shared/data/fodors_zagat")
def test_two_guides_without_a_config_are_linked_one_to_one_as_the_configured_run(tmp_path):
    """Fodor's and Zagat list each restaurant once. With no config (link and dedupe), the
    matches show it, and the run links the guides one-to-one from blocking on, as link_only:
    the same F1 as the configured run, which judges the same."""
    from identigraph.resolution import datasets
    from identigraph.resolution.config import load_config
    from identigraph.resolution.infer import infer_config
    from identigraph.resolution.ingest import input_files

    data = datasets.fodors_zagat(SHARED_DATA, tmp_path / "data")
    truth = pd.read_parquet(data.truth)
    scores = {}
    for name, config in (("configured", load_config(data.config)),
                         ("inferred", infer_config(input_files(data.files, None)))):
        result = Linker(config).run(data.files, tmp_path / name)
        assert result.clustering["one_to_one"]["linked_one_to_one"] == ["fodors", "zagats"]
        scores[name] = evaluate_entities(pd.read_parquet(tmp_path / name / "entities.parquet"), truth,
                                         "record_id", "entity", "source").pairwise_f1
        assert result.read == result.records + result.quarantined
    assert result.clustering["one_to_one"]["judged_from"]["linked_one_to_one"] == ["fodors", "zagats"]
    assert "link_type = \"link_only\"" in (tmp_path / "inferred" / "linkage.toml").read_text()
    assert scores["inferred"] == pytest.approx(scores["configured"]) and scores["configured"] >= 0.98
    without = Linker(parse_config({**_as_raw(load_config(data.config)), "model": {
        "link_type": "link_only", "one_to_one": False}})).run(data.files, tmp_path / "plain")
    assert "one_to_one" in without.clustering and without.clustering["one_to_one"]["linked_one_to_one"] == []
    plain = evaluate_entities(pd.read_parquet(tmp_path / "plain" / "entities.parquet"), truth,
                              "record_id", "entity", "source").pairwise_f1
    assert plain < scores["configured"]


def _as_raw(config) -> dict:
    return {"id_column": config.id_column, "fields": dict(config.fields)}


def test_one_file_gathering_two_guides_is_linked_as_the_two_files_are(tmp_path):
    """Both guides in one file, a Source column naming each row's guide and the site named
    "Site name" (as a directory gathering several systems' listings writes it), a director
    column of people: with no config the Source column names the sources, the site name is
    the organisation, the director is text, and the guides link one-to-one as the two files
    do. Records in = records out + quarantined."""
    from identigraph.resolution import datasets
    from identigraph.resolution.infer import infer_config, infer_sources
    from identigraph.resolution.ingest import input_files

    data = datasets.fodors_zagat(SHARED_DATA, tmp_path / "data")
    guides = []
    for path in data.files:
        frame = pd.read_csv(path, dtype=str)
        guides.append(frame.assign(Source=f" {path.stem} ", Director=["Maria Lopez", "John Smith", None] * (
            len(frame) // 3) + ["Ann Lee"] * (len(frame) % 3)))
    one = pd.concat(guides).rename(columns={"name": "Site name", "addr": "Address", "city": "City",
                                            "phone": "Phone", "type": "Type"}).reset_index(drop=True)
    one.loc[0, "Source"] = None  # a row naming no source is the file's
    path = tmp_path / "listings.csv"
    one.to_csv(path, index=False)
    inferred = infer_sources([path])["listings"]
    types = {c.column: c.type for c in inferred.columns}
    assert inferred.source_column == "Source" and "Source" not in types
    assert types["Site name"] == "organisation_name" and types["Director"] == "text"
    result = Linker(infer_config(input_files([path], None))).run([path], tmp_path / "out")
    assert result.read == result.records + result.quarantined == len(one)
    entities = pd.read_parquet(tmp_path / "out" / "entities.parquet")
    assert sorted(entities["source"].unique()) == ["fodors", "listings", "zagats"]
    assert set(result.clustering["one_to_one"]["linked_one_to_one"]) >= {"fodors", "zagats"}
    truth = pd.read_parquet(data.truth)
    truth.loc[(truth["source"] == "fodors") & (truth["record_id"] == str(one["id"].iloc[0])), "source"] = "listings"
    f1 = evaluate_entities(entities, truth, "record_id", "entity", "source").pairwise_f1
    assert f1 >= 0.98


@pytest.mark.skipif(not (SHARED_DATA / "fodors_zagat").is_dir(), reason="needs ../shared/data/fodors_zagat")
def test_a_record_matched_alone_links_one_to_one_as_the_batch_did(tmp_path):
    """The two guides link one-to-one, some partners below the match threshold. Each
    restaurant matched on its own (leave one out, as `POST /v1/match` does) joins the
    customer the batch gave it: its best partner in the other guide, unless that partner
    holds a record of its guide already; matching by the threshold alone misses some."""
    from identigraph.resolution import datasets
    from identigraph.resolution.config import load_config
    from identigraph.resolution.matching import MatchQuery, RecordMatcher

    data = datasets.fodors_zagat(SHARED_DATA, tmp_path / "data")
    Linker(load_config(data.config)).run(data.files, tmp_path / "out")
    entities = pd.read_parquet(tmp_path / "out" / "entities.parquet")
    size_of = entities.groupby("entity_id").size()
    entity_of = dict(zip(entities["source"] + ":" + entities["record_id"].astype(str), entities["entity_id"]))
    config = load_config(data.config)
    queries, expected = [], []
    for path in data.files:
        types = config.for_source(path.stem)
        for row in pd.read_csv(path, dtype=str, keep_default_na=False).to_dict("records"):
            record_id = row[types.id_column]
            fields = {(f"{kind}__{c}" if kind in ("text", "category") else kind): row[c]
                      for c, kind in types.fields.items() if kind != "ignore" and row[c].strip()}
            queries.append(MatchQuery(path.stem, fields, record_id))
            own = entity_of[f"{path.stem}:{record_id}"]
            expected.append(own if size_of[own] > 1 else None)
    matcher = RecordMatcher.load(tmp_path / "out")

    def agreement() -> float:
        answers = [r.would_join for i in range(0, len(queries), 64) for r in matcher.match_many(queries[i:i + 64])]
        return sum(a == e for a, e in zip(answers, expected)) / len(expected)

    assert sum(e is not None for e in expected) >= 200
    assert agreement() >= 0.998
    matcher._once = set()  # the threshold alone
    assert agreement() < 0.995
