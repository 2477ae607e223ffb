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


def test_user_errors_become_one_line_and_bugs_keep_their_traceback():
    from identigraph.cli.errors import one_line

    assert one_line(ValueError("--k 'x': give a number")) == "--k 'x': give a number"
    assert one_line(KeyError("record crm:1 is not in entities.parquet")) == "record crm:1 is not in entities.parquet"
    missing = one_line(ModuleNotFoundError("No module named 'torch'", name="torch"))
    assert missing is not None and 'pip install "identigraph[gnn]"' in missing
    assert 'pip install "identigraph[serve]"' in (one_line(ModuleNotFoundError("x", name="uvicorn")) or "")
    assert one_line(ModuleNotFoundError("No module named 'numpyy'", name="numpyy")) is None
    assert one_line(IndexError("index 5 is out of bounds")) is None
    assert one_line(ZeroDivisionError()) is None


def test_a_message_with_square_brackets_is_printed_whole(tmp_path):
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('[nodes.User]\nid = "user_id"\nfile = "missing.csv"\n')
    result = runner.invoke(app, ["graph", "import", str(mapping), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "[nodes.User]" in result.output  # rich markup would have eaten "[nodes.User]"
