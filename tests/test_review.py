"""Clerical review: the uncertain pairs go out most uncertain first, decisions drawn from
the truth come back as must-link / cannot-link constraints the clusters obey, and F1
against the truth does not drop."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from identigraph.cli.app import app
from identigraph.resolution.evaluation import evaluate_clusters

runner = CliRunner()


def truth_decisions(exported: pd.DataFrame, truth_dir: Path, count: int) -> pd.DataFrame:
    """The first ``count`` exported pairs decided by the generator's truth."""
    records = pd.read_parquet(truth_dir / "records.parquet")
    person = pd.Series(records["customer_id"].to_numpy(), index=records["source"] + ":" + records["record_id"])
    chosen = exported.head(count).copy()
    same = person.reindex(chosen["record_l"]).to_numpy() == person.reindex(chosen["record_r"]).to_numpy()
    chosen["decision"] = np.where(same, "match", "non-match")
    return chosen


def f1_against_truth(run: Path, truth_dir: Path) -> float:
    entities = pd.read_parquet(run / "entities.parquet")
    records = pd.read_parquet(truth_dir / "records.parquet")
    key = entities["source"] + ":" + entities["record_id"]
    person = pd.Series(records["customer_id"].to_numpy(), index=records["source"] + ":" + records["record_id"])
    return evaluate_clusters(entities["entity_id"], person.reindex(key).reset_index(drop=True)).pairwise_f1


@pytest.fixture()
def run(graph_tables, tmp_path) -> Path:
    copy = tmp_path / "resolved"
    shutil.copytree(graph_tables.parent / "resolved", copy)
    return copy


def test_export_writes_the_uncertain_band_most_uncertain_first(run, tmp_path):
    out = tmp_path / "pairs.csv"
    result = runner.invoke(app, ["review", "export", str(run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    exported = pd.read_csv(out, dtype={"decision": str}, keep_default_na=False)
    assert len(exported) > 20
    assert exported["match_probability"].between(0.01, 0.9, inclusive="left").all()
    weights = exported["match_weight"].abs().to_numpy()
    assert (np.diff(weights) >= -0.011).all()  # rounded to 2 decimals
    assert {"first_name_l", "first_name_r", "first_name_level", "first_name_weight", "decision"} <= set(exported.columns)
    assert (exported["decision"] == "").all()


def test_decisions_become_constraints_and_f1_does_not_drop(run, small_dataset, tmp_path):
    truth = small_dataset / "truth"
    out = tmp_path / "pairs.csv"
    runner.invoke(app, ["review", "export", str(run), "--out", str(out)])
    decided = truth_decisions(pd.read_csv(out, dtype=str, keep_default_na=False), truth, 200)
    assert decided["decision"].nunique() == 2  # both kinds of decision are exercised
    decided.to_csv(tmp_path / "decisions.csv", index=False)
    before = f1_against_truth(run, truth)
    result = runner.invoke(app, ["review", "import", str(run), str(tmp_path / "decisions.csv"), "--retrain"])
    assert result.exit_code == 0, result.output
    assert "m re-estimated" in result.output
    entities = pd.read_parquet(run / "entities.parquet")
    entity = pd.Series(entities["entity_id"].to_numpy(), index=entities["source"] + ":" + entities["record_id"])
    together = entity[decided["record_l"]].to_numpy() == entity[decided["record_r"]].to_numpy()
    assert (together == (decided["decision"] == "match").to_numpy()).all()
    after = f1_against_truth(run, truth)
    assert after >= before
    golden = pd.read_parquet(run / "golden.parquet")
    assert sorted(golden["entity_id"]) == sorted(entities["entity_id"].unique())
    assert (run / "review_decisions.parquet").exists() and (run / "model.before-review.json").exists()


def test_a_bad_decision_names_row_and_column(run, tmp_path):
    out = tmp_path / "pairs.csv"
    runner.invoke(app, ["review", "export", str(run), "--out", str(out), "--limit", "5"])
    exported = pd.read_csv(out, dtype=str, keep_default_na=False)
    exported.loc[2, "decision"] = "probably"
    exported.to_csv(out, index=False)
    result = runner.invoke(app, ["review", "import", str(run), str(out)])
    assert result.exit_code == 1 and "row 4, column 'decision'" in result.output and "match or non-match" in result.output
