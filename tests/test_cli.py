"""The command line is a thin shell: help, generate, profile and clear errors."""
from typer.testing import CliRunner

from identigraph.cli.app import app

runner = CliRunner()


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("generate", "profile", "demo", "neo4j"):
        assert command in result.output


def test_generate_then_profile(tmp_path):
    out = tmp_path / "data"
    result = runner.invoke(app, ["generate", "--customers", "1200", "--out", str(out), "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert (out / "crm.csv").exists() and (out / "truth" / "records.parquet").exists()
    profile = runner.invoke(app, ["profile", str(out)])
    assert profile.exit_code == 0, profile.output
    assert "crm.csv" in profile.output and "truth: 1,200 customers" in profile.output


def test_profile_masks_personal_values(tmp_path):
    out = tmp_path / "data"
    runner.invoke(app, ["generate", "--customers", "1000", "--out", str(out)])
    import pandas as pd

    top_email = pd.read_csv(out / "crm.csv", dtype=str)["email"].value_counts().index[0]
    result = runner.invoke(app, ["profile", str(out)])
    assert top_email not in result.output


def test_bad_input_gives_a_clear_error(tmp_path):
    result = runner.invoke(app, ["profile", str(tmp_path / "missing")])
    assert result.exit_code == 1
    assert "is not a folder" in result.output
    result = runner.invoke(app, ["generate", "--customers", "0", "--out", str(tmp_path)])
    assert result.exit_code != 0
