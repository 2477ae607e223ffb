"""ruff and mypy pass on the code, and each fails on an error planted in it (so a pass means
something)."""
from __future__ import annotations

import shutil

from tests.code_checks import ROOT, STAGES, run_mypy, run_ruff


def test_ruff_passes_on_the_code():
    done = run_ruff()
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_fails_on_an_unused_import_and_unsorted_imports(tmp_path):
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "planted.py").write_text("import sys\nimport os\n\nprint(os.sep)\n")
    done = run_ruff(tmp_path, ["planted.py"])
    assert done.returncode == 1
    assert "F401" in done.stdout and "I001" in done.stdout


def test_mypy_passes_on_the_package():
    done = run_mypy()
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_fails_on_a_wrong_type_and_on_an_untyped_function_in_a_strict_module(tmp_path):
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "identigraph", tmp_path / "identigraph", ignore=shutil.ignore_patterns("__pycache__"))
    for stage in STAGES:
        shutil.copytree(ROOT / stage, tmp_path / stage, ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / "resolution" / "linker.py", "a") as handle:
        handle.write("\n\ndef planted_wrong_type() -> int:\n    return 'not a number'\n")
    with open(tmp_path / "cli" / "errors.py", "a") as handle:  # a module on the strict list
        handle.write("\n\ndef planted_untyped(message):\n    return message\n")
    done = run_mypy(tmp_path)
    assert done.returncode == 1
    assert "identigraph/resolution/linker.py" in done.stdout and "[return-value]" in done.stdout
    assert "identigraph/cli/errors.py" in done.stdout and "[no-untyped-def]" in done.stdout
