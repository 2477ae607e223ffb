"""Every ```python block of README.md and docs/*.md runs, as a user would paste it: in a new
folder, in a fresh interpreter, each block of a file after the ones before it."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
WITH_EXAMPLES = [d for d in DOCUMENTS if BLOCK.search(d.read_text())]


def test_the_readme_and_the_docs_have_python_examples():
    names = {d.name for d in WITH_EXAMPLES}
    assert {"README.md", "bring-your-own-graph.md"} <= names


@pytest.mark.parametrize("document", WITH_EXAMPLES, ids=lambda d: d.name)
def test_python_examples_run(document, tmp_path):
    script = "\n\n".join(BLOCK.findall(document.read_text()))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"{document.name}:\n{done.stdout}\n{done.stderr}"
