"""Lint and type checks over the package as it installs: ruff on the checkout, mypy on the
stages' folders seen as ``identigraph.<stage>`` (a folder of links that stands for the wheel's
layout). ``python tests/code_checks.py`` runs both, as ``make lint`` does."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def package_folders(root: Path = ROOT) -> dict[str, str]:
    """``identigraph.<sub>`` -> the checkout's folder for it, as pyproject.toml maps them."""
    with open(root / "pyproject.toml", "rb") as handle:
        return dict(tomllib.load(handle)["tool"]["setuptools"]["package-dir"])


# The stage folders the package is made of (identigraph/ itself aside; subpackages such as
# resolution/spark come with their stage's folder).
STAGES = tuple(folder for package, folder in package_folders().items() if package != "identigraph" and "/" not in folder)


def package_view(root: Path, into: Path) -> Path:
    """``into/identigraph`` with links to ``root``'s ``identigraph/__init__.py`` and stage folders."""
    package = into / "identigraph"
    package.mkdir(parents=True)
    (package / "__init__.py").symlink_to(root / "identigraph" / "__init__.py")
    for stage in STAGES:
        (package / stage).symlink_to(root / stage, target_is_directory=True)
    return package


def run_ruff(root: Path = ROOT, paths: list[str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *(paths or ["."])], cwd=root,
                          capture_output=True, text=True, timeout=300)


def run_mypy(root: Path = ROOT) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as view:
        package_view(root, Path(view))
        env = {**os.environ, "MYPYPATH": view}
        return subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(root / "pyproject.toml"),
                               "--no-incremental", "-p", "identigraph"], cwd=view, env=env, capture_output=True,
                              text=True, timeout=900)


if __name__ == "__main__":
    failed = False
    for name, check in (("ruff", run_ruff), ("mypy", run_mypy)):
        done = check()
        print(f"== {name}\n{done.stdout}{done.stderr}", end="")
        failed |= done.returncode != 0
    sys.exit(1 if failed else 0)
