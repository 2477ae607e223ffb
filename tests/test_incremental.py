"""Incremental linking: batch A, then batch B against it, gives the customers a full run
on A+B gives (with the same model), keeps A's ids except where customers truly merge,
and writes every merge to lineage.parquet."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.app import app
from resolution.config import load_config
from resolution.evaluation import evaluate_clusters
from resolution.io import read_table, write_table
from resolution.linker import Linker
from resolution.model import FellegiSunterModel

runner = CliRunner()
CHANNELS = ("crm.csv", "web_accounts.jsonl", "app_users.parquet", "store_loyalty.csv", "callcenter.csv")


@pytest.fixture(scope="module")
def batches(small_dataset, tmp_path_factory) -> dict[str, Path]:
    """Every channel file cut in two by a hash of the row: A (80%), B (20%), and A+B."""
    work = tmp_path_factory.mktemp("batches")
    folders = {name: work / name for name in ("a", "b", "ab")}
    for folder in folders.values():
        folder.mkdir()
        shutil.copy(small_dataset / "linkage.toml", folder)
    for name in CHANNELS:
        frame = read_table(small_dataset / name)
        in_b = frame.iloc[:, 0].astype(str).map(lambda v: hashlib.md5(v.encode()).digest()[0] % 5 == 0)
        write_table(frame[~in_b], folders["a"] / name)
        write_table(frame[in_b], folders["b"] / name)
        write_table(pd.concat([frame[~in_b], frame[in_b]]), folders["ab"] / name)
    return folders


@pytest.fixture(scope="module")
def runs(batches, tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("runs")
    config = load_config(batches["a"] / "linkage.toml")
    Linker(config).run([batches["a"]], work / "a")
    model = FellegiSunterModel.from_json(json.loads((work / "a" / "model.json").read_text()))
    Linker(config).run([batches["ab"]], work / "full", model=model)
    result = runner.invoke(app, ["resolve", str(batches["b"]), "--previous", str(work / "a"),
                                 "--out", str(work / "incremental")])
    assert result.exit_code == 0, result.output
    assert "incremental against" in result.output
    return {"a": work / "a", "full": work / "full", "incremental": work / "incremental"}


def _entities(run: Path) -> pd.DataFrame:
    frame = pd.read_parquet(run / "entities.parquet")
    return frame.assign(key=frame["source"] + ":" + frame["record_id"]).set_index("key")


def test_incremental_equals_a_full_run_on_both_batches(runs):
    full, incremental = _entities(runs["full"]), _entities(runs["incremental"])
    assert sorted(full.index) == sorted(incremental.index)
    incremental = incremental.reindex(full.index)
    # The same partition: pairwise agreement of the two clusterings, both ways.
    metrics = evaluate_clusters(incremental["entity_id"], full["entity_id"])
    assert metrics.pairwise_precision >= 0.999 and metrics.pairwise_recall >= 0.999, metrics
    run = json.loads((runs["incremental"] / "run.json").read_text())
    assert run["read"] == run["records"] + run["quarantined"]
    assert run["incremental"]["new_records_joining_earlier_customers"] > 0 and run["incremental"]["new_customers"] > 0


def test_earlier_ids_survive_unless_customers_merge(runs):
    before, after = _entities(runs["a"]), _entities(runs["incremental"])
    after = after.reindex(before.index)
    lineage = pd.read_parquet(runs["incremental"] / "lineage.parquet")
    merged_away = {old for row in lineage.itertuples() if row.event == "merge" for old in row.old_ids
                   if old != row.new_id}
    changed = before["entity_id"] != after["entity_id"]
    # Every earlier record keeps its customer id, unless that customer merged into another.
    assert set(before.loc[changed, "entity_id"]) <= merged_away
    for row in lineage[lineage["event"] == "merge"].itertuples():
        assert row.new_id in set(row.old_ids) and len(row.old_ids) >= 2
        survivors = after[before["entity_id"].isin(row.old_ids)]["entity_id"]
        assert (survivors == row.new_id).all()
        # The documented rule: the earlier customer with the most records survives.
        sizes = before["entity_id"].value_counts().reindex(row.old_ids)
        assert sizes[row.new_id] == sizes.max()
        assert row.evidence and row.at


def test_a_second_incremental_batch_is_idempotent_on_ids(runs, batches, tmp_path):
    """Linking the same batch again changes no id: the records are updates of themselves."""
    again = tmp_path / "again"
    result = Linker(load_config(batches["b"] / "linkage.toml")).run_incremental([batches["b"]], runs["incremental"],
                                                                                 again)
    before, after = _entities(runs["incremental"]), _entities(again)
    assert result.incremental["updated_records"] == result.records
    pd.testing.assert_series_equal(before["entity_id"].sort_index(), after["entity_id"].sort_index())
    golden = pd.read_parquet(again / "golden.parquet")
    assert sorted(golden["entity_id"]) == sorted(after["entity_id"].unique())


def test_previous_must_be_a_clear_earlier_run(runs, batches, tmp_path):
    result = runner.invoke(app, ["resolve", str(batches["b"]), "--previous", str(tmp_path), "--out",
                                 str(tmp_path / "x")])
    assert result.exit_code == 1 and "model.json" in result.output and "--previous" in result.output
    result = runner.invoke(app, ["resolve", str(batches["b"]), "--previous", str(runs["a"]), "--out", str(runs["a"])])
    assert result.exit_code == 1 and "new folder" in result.output


@pytest.mark.neo4j
def test_a_delta_load_gives_the_graph_a_full_load_gives(runs, small_dataset, tmp_path, neo4j_db, neo4j_settings):
    from graph.build import build_graph_tables
    from graph.load import load_graph
    from tests.test_graph import snapshot

    before, after = tmp_path / "tables_a", tmp_path / "tables_incremental"
    build_graph_tables(runs["a"], before, small_dataset)
    build_graph_tables(runs["incremental"], after, small_dataset)
    database = neo4j_settings.database
    load_graph(after, neo4j_db, database, replace=True)
    full = snapshot(neo4j_db, database)
    load_graph(before, neo4j_db, database, replace=True)
    assert snapshot(neo4j_db, database) != full
    env = {"NEO4J_URI": neo4j_settings.uri, "NEO4J_USER": neo4j_settings.user,
           "NEO4J_PASSWORD": neo4j_settings.password, "NEO4J_DATABASE": database}
    result = runner.invoke(app, ["load", str(after), "--delta-from", str(before)], env=env)
    assert result.exit_code == 0, result.output
    assert snapshot(neo4j_db, database) == full
    # Only the changes were written: far fewer rows than the tables hold.
    written = int(result.output.split("rows new or changed")[0].split(":")[-1].replace(",", ""))
    unchanged = int(result.output.split("removed, ")[1].split(" unchanged")[0].replace(",", ""))
    assert 0 < written < unchanged / 2
