"""``identigraph resolve --engine spark`` against the embedded engine, on Spark in local mode
(a real JVM, pyspark from the lock): the same customers, pairs, golden records and model on
real data; quarantine accounting; and one planted huge block (a switchboard number, a
common name) that must neither stall a task nor blow its memory."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

pytest.importorskip("pyspark", reason="the Spark engine's tests need pyspark (requirements.lock installs it)")

from identigraph.cli.app import app  # noqa: E402
from identigraph.resolution.datasets import febrl  # noqa: E402
from identigraph.resolution.jobs import resolve_files  # noqa: E402

ARTIFACTS = ("records", "entities", "pairs", "golden", "quarantine")


def _same_artifacts(embedded: Path, spark: Path) -> None:
    for name in ARTIFACTS:
        a, b = pd.read_parquet(embedded / f"{name}.parquet"), pd.read_parquet(spark / f"{name}.parquet")
        assert list(a.columns) == list(b.columns), name
        if name == "golden":  # one row per customer, in any order
            a, b = (f.sort_values("entity_id").reset_index(drop=True) for f in (a, b))
        if name == "quarantine":
            # The same rows for the same reasons; the readers word a parse error their own way
            # and only the embedded one knows the line number.
            a, b = (pd.DataFrame({"source": f["source"], "record_id": f["record_id"].astype(object),
                                  "reason": f["reason"].str.split(":").str[0]})
                    .sort_values(["source", "reason", "record_id"]).reset_index(drop=True) for f in (a, b))
        a, b = (f.astype(object).where(f.notna(), None).astype(str) for f in (a, b))
        pd.testing.assert_frame_equal(a, b, obj=name)
    assert json.loads((embedded / "model.json").read_text()) == json.loads((spark / "model.json").read_text())


def test_spark_engine_gives_the_embedded_engines_customers_on_febrl3(tmp_path):
    """FEBRL3 (5,000 records, dedupe): the documented command, then every artifact equal to
    the embedded engine's: the same candidates, model, prior, scores and clusters."""
    data = febrl(3, tmp_path / "data")
    embedded = resolve_files(data.files, tmp_path / "embedded", data.config)
    result = CliRunner().invoke(app, ["resolve", *map(str, data.files), "--config", str(data.config),
                                      "--out", str(tmp_path / "spark"), "--engine", "spark"])
    assert result.exit_code == 0, result.output
    _same_artifacts(tmp_path / "embedded", tmp_path / "spark")
    run = json.loads((tmp_path / "spark" / "run.json").read_text())
    assert run["candidate_pairs"] == embedded.candidate_pairs
    assert run["blocking_recall"] == json.loads((tmp_path / "embedded" / "run.json").read_text())["blocking_recall"]


def _planted(tmp_path: Path) -> tuple[list[Path], Path]:
    """Two channels of one small population, with a switchboard: 1,500 records of different
    people sharing one phone number and one surname (a block 3x the run's cap), and rows
    the run must quarantine: no id, a repeated id, an unparseable line, an erased record."""
    rng = np.random.default_rng(5)
    given = np.array(["anna", "ben", "carla", "dmitri", "eve", "farid", "gina", "hugo", "ines", "jon"])
    family = np.array(["smith", "okafor", "nguyen", "garcia", "kowalski", "haddad", "lindqvist", "tanaka"])
    people = 600
    first = given[rng.integers(0, len(given), people)]
    last = np.char.add(family[rng.integers(0, len(family), people)], rng.integers(0, 40, people).astype(str))
    dob = [f"19{60 + i % 40:02d}-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(people)]
    email = [f"{f}.{s}{i}@example.org" for i, (f, s) in enumerate(zip(first, last))]
    crm = pd.DataFrame({"id": [f"c{i}" for i in range(people)], "first_name": first, "last_name": last, "dob": dob,
                        "email": email, "phone": [f"+4420{7000000 + i}" for i in range(people)]})
    shop = crm.sample(frac=0.7, random_state=1).reset_index(drop=True)
    shop["id"] = [f"s{i}" for i in range(len(shop))]
    shop["first_name"] = shop["first_name"].str.capitalize()
    switchboard = pd.DataFrame({
        "id": [f"b{i}" for i in range(1_500)], "first_name": given[rng.integers(0, len(given), 1_500)],
        "last_name": "switchboard", "dob": [f"19{50 + i % 50:02d}-{1 + i % 12:02d}-{1 + (i * 7) % 28:02d}"
                                            for i in range(1_500)],
        "email": None, "phone": "+442079460000"})
    shop = pd.concat([shop, switchboard], ignore_index=True)
    folder = tmp_path / "channels"
    folder.mkdir()
    crm.to_csv(folder / "crm.csv", index=False)
    text = shop.to_csv(index=False)
    text += "s-dup,x,y,1970-01-01,,\n".replace("s-dup", "s1")  # repeated id
    text += ",nobody,noid,1971-02-03,,\n"  # no id
    text += "s9998,too,many,1970-01-01,x@example.org,+442070000001,extra\n"  # unparseable
    (folder / "shop.csv").write_text(text)
    config = folder.parent / "linkage.toml"
    config.write_text('id_column = "id"\n[fields]\nfirst_name = "first_name"\nlast_name = "last_name"\n'
                      'dob = "date_of_birth"\nemail = "email"\nphone = "phone"\n'
                      '[model]\nmax_block_size = 500\none_to_one = false\n')
    forgotten = folder.parent / "forgotten.jsonl"
    forgotten.write_text(json.dumps({"request_id": "F-1", "record_key": "crm:c7"}) + "\n")
    return [folder / "crm.csv", folder / "shop.csv"], config


def test_spark_engine_on_a_planted_huge_block_and_bad_rows(tmp_path):
    """A block 3x the cap is paired by sorted neighbourhood in windows (linear in the block),
    the run ends with the embedded engine's customers, and every row read is a record or
    in the quarantine with its reason."""
    from identigraph.resolution.erasure import FORGOTTEN_FILE

    files, config = _planted(tmp_path)
    for out in ("embedded", "spark"):
        (tmp_path / out).mkdir()
        (tmp_path / out / FORGOTTEN_FILE).write_text((tmp_path / "forgotten.jsonl").read_text())
    embedded = resolve_files(files, tmp_path / "embedded", config)
    spark = resolve_files(files, tmp_path / "spark", config, engine="spark", spark_master="local[2]")
    _same_artifacts(tmp_path / "embedded", tmp_path / "spark")
    assert spark.read == spark.records + spark.quarantined == embedded.read
    reasons = pd.read_parquet(tmp_path / "spark" / "quarantine.parquet")["reason"].tolist()
    assert any(r.startswith("missing id") for r in reasons)
    assert any(r.startswith("duplicate id") for r in reasons)
    assert any("F-1" in r for r in reasons)
    assert any(r.startswith("unparseable row") for r in reasons)
    phone_rule = next(r for r in spark.blocking if r["rule"] == "phone")
    assert phone_rule["blocks_skipped"] == 1 and phone_rule["records_in_skipped_blocks"] == 1_500
    neighbourhood = sum(r["pairs"] for r in spark.blocking if r["rule"].startswith("phone, oversized"))
    # Sorted neighbourhood: at most REFINING_WINDOW pairs per record and refining column,
    # against 1,124,250 pairs in the block.
    assert 0 < neighbourhood <= 5 * 1_500 * 4
    assert spark.candidate_pairs == embedded.candidate_pairs


def test_connected_components_on_spark_settle_long_chains_and_stars():
    """Min-label propagation with pointer jumping: a 3,000-record chain given in shuffled
    order, a star and a lone pair each end with their smallest record as label."""
    from identigraph.resolution.spark.components import connected_components
    from identigraph.resolution.spark.session import spark_session

    spark = spark_session("local[2]")
    order = np.random.default_rng(3).permutation(3_000)
    chain = [(int(a), int(b)) for a, b in zip(order[:-1], order[1:])]
    star = [(5_000, 5_000 + k) for k in range(1, 200)]
    edges = pd.DataFrame([(min(a, b), max(a, b)) for a, b in chain + star + [(9_001, 9_000)]], columns=["l", "r"])
    labels = connected_components(spark, spark.createDataFrame(edges)).toPandas().set_index("_idx")["_component"]
    assert len(labels) == 3_000 + 200 + 2
    assert (labels.loc[list(range(3_000))] == 0).all()
    assert (labels.loc[list(range(5_000, 5_200))] == 5_000).all()
    assert labels.loc[9_000] == labels.loc[9_001] == 9_000


def test_spark_engine_reads_and_writes_hadoop_uris(tmp_path):
    """Inputs and --out as URIs (``file://`` goes through Hadoop's file system, as ``hdfs://``
    or ``s3a://`` would): artifacts are Spark's folders of parts, readable as they are, with
    the customers a local run gives."""
    data = febrl(4, tmp_path / "data")
    local = resolve_files(data.files, tmp_path / "local", data.config, engine="spark", spark_master="local[2]")
    result = CliRunner().invoke(app, ["resolve", *[f"file://{f}" for f in data.files], "--config", str(data.config),
                                      "--out", f"file://{tmp_path / 'remote'}", "--engine", "spark"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "remote" / "entities.parquet").is_dir()
    for name in ("entities", "golden", "pairs", "records"):
        a = pd.read_parquet(tmp_path / "local" / f"{name}.parquet")
        b = pd.read_parquet(tmp_path / "remote" / f"{name}.parquet")
        key = [c for c in ("source", "record_id", "entity_id", "source_l", "record_id_l", "source_r", "record_id_r")
               if c in a.columns]
        a, b = (f.sort_values(key).reset_index(drop=True).astype(str) for f in (a, b))
        pd.testing.assert_frame_equal(a, b, obj=name)
    assert json.loads((tmp_path / "remote" / "run.json").read_text())["records"] == local.records
