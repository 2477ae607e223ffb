"""The wheel as a user installs it: built with ``python -m build``, installed into a fresh
virtualenv without the ``gnn`` extra (the versions pinned by requirements.lock), and run."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from identigraph.resolution import datasets
from tests.code_checks import package_folders

ROOT = Path(__file__).resolve().parents[1]
# The stage folders (a subpackage such as resolution/spark comes with its stage's).
SOURCES = ("pyproject.toml", "README.md", "LICENSE", *(f for f in package_folders().values() if "/" not in f))


def _run(command: list, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{command}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The fresh virtualenv with the wheel installed; returns its bin folder."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"  # a copy: the build's own files stay out of the checkout
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif (ROOT / name).exists():
            shutil.copy(ROOT / name, source / name)
    _run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", work / "dist", source], timeout=600)
    wheel = next((work / "dist").glob("identigraph-*.whl"))
    _run([sys.executable, "-m", "venv", work / "venv"], timeout=300)
    bin_dir = work / "venv" / "bin"
    # No PYTHONPATH: the venv must run the wheel's code, not the checkout's.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    _run([bin_dir / "python", "-m", "pip", "install", "--quiet", "-c", ROOT / "requirements.lock", wheel],
         timeout=1800, env=env)
    return bin_dir


def _clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def test_the_wheel_pulls_no_torch_and_installs_only_the_identigraph_package(installed):
    listed = json.loads(_run([installed / "python", "-m", "pip", "list", "--format", "json"],
                             env=_clean_env()).stdout)
    names = {p["name"].lower().replace("_", "-") for p in listed}
    assert "identigraph" in names
    assert not names & {"torch", "torch-geometric", "nvidia-cublas-cu12", "triton"}
    # Run from the venv's folder: from the checkout, "import identigraph" would find its identigraph/.
    site = Path(_run([installed / "python", "-c", "import identigraph, pathlib; "
                      "print(pathlib.Path(identigraph.__file__).parents[1])"], env=_clean_env(),
                     cwd=installed.parent).stdout.strip())
    assert "site-packages" in site.parts
    dist_info = next(site.glob("identigraph-*.dist-info"))
    tops = {line.split(",")[0].split("/")[0] for line in (dist_info / "RECORD").read_text().splitlines()}
    assert tops - {"..", dist_info.name} == {"identigraph"}, tops
    assert (dist_info / "top_level.txt").read_text().split() == ["identigraph"]
    # Every Python module of the stage folders is in the wheel (a subpackage missing from
    # pyproject's list would be left out silently).
    stages = {"cli": "cli", "graph": "graph", "resolution": "resolution", "embeddings": "embeddings",
              "scoring": "scoring", "synthetic": "synthetic", "serve": "serve"}
    shipped = {line.split(",")[0] for line in (dist_info / "RECORD").read_text().splitlines()}
    for stage, folder in stages.items():
        for module in (ROOT / folder).rglob("*.py"):
            assert f"identigraph/{stage}/{module.relative_to(ROOT / folder).as_posix()}" in shipped, module
    # The cookbook and the Neo4j launcher travel with the code.
    assert (site / "identigraph" / "cypher" / "customer_360.cypher").exists()
    assert (site / "identigraph" / "graph" / "neo4j_launcher" / "pom.xml").exists()


def _resolve_f1(identigraph: list, data: datasets.RealDataset, out: Path, env: dict, cwd: Path) -> float:
    _run([*identigraph, "resolve", *data.files, "--config", data.config, "--out", out], env=env, cwd=cwd, timeout=900)
    metrics = _run([*identigraph, "evaluate", out, "--truth", data.truth, "--truth-id", "record_id",
                    "--truth-entity", "entity", "--truth-source", "source", "--json"], env=env, cwd=cwd, timeout=300)
    return json.loads(metrics.stdout)["pairwise_f1"]


def test_resolve_from_the_wheel_gives_the_dev_installs_f1_on_febrl4(installed, tmp_path):
    data = datasets.febrl(4, tmp_path / "data")
    from_wheel = _resolve_f1([installed / "identigraph"], data, tmp_path / "wheel", _clean_env(), cwd=tmp_path)
    dev_env = {**os.environ, "PYTHONPATH": str(ROOT)}
    from_checkout = _resolve_f1([sys.executable, "-m", "identigraph.cli.app"], data, tmp_path / "dev", dev_env,
                                cwd=ROOT)
    assert from_wheel == from_checkout
    assert from_wheel >= 0.998


def test_a_gnn_command_without_the_extra_says_how_to_get_it_in_one_line(installed, tmp_path):
    done = subprocess.run([installed / "identigraph", "embed", tmp_path], capture_output=True, text=True,
                          env=_clean_env(), cwd=tmp_path, timeout=300)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and 'pip install "identigraph[gnn]"' in lines[0], done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_every_public_name_of_identigraph_imports_and_is_listed_once():
    import identigraph

    names = set(identigraph.__all__) - {"__version__"}
    assert names == set(identigraph._PUBLIC)
    for name in sorted(names):
        assert getattr(identigraph, name) is not None, name
