"""Two checkouts of the project on one machine share the cached venv (its editable install
names whichever checkout installed last): each one's `identigraph neo4j` commands and test
runs must address its own store, and stop only the server they started."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from identigraph.graph import local_neo4j

pytestmark = pytest.mark.neo4j
REPO = Path(__file__).resolve().parents[1]
# What a test run inside a checkout sees of its server.
PROBE = "from graph import local_neo4j; s = local_neo4j.status(); print('PROBE', s.state_dir, s.running, s.pid)"


def _checkout(folder: Path) -> Path:
    (folder / "src" / "deep").mkdir(parents=True)
    shutil.copy(REPO / "pyproject.toml", folder / "pyproject.toml")
    return folder


def _probe(output: str) -> tuple[str, bool, int]:
    line = next(line for line in output.splitlines() if line.startswith("PROBE "))
    _, store, running, pid = line.split()
    return store, running == "True", int(pid)


def test_each_checkout_addresses_its_own_store_and_stops_only_what_it_started(tmp_path):
    a, b = _checkout(tmp_path / "checkout_a"), _checkout(tmp_path / "checkout_b")
    # One code base for both, as the shared venv gives: only the working directory differs.
    env = {k: v for k, v in os.environ.items() if k not in ("IDENTIGRAPH_NEO4J_DIR", "NEO4J_URI", "NEO4J_PASSWORD")}
    env["PYTHONPATH"] = str(REPO)

    def identigraph(cwd: Path, *arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "identigraph.cli.app", *arguments], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=300)

    store_a, store_b = a / ".neo4j", b / ".neo4j"
    try:
        started = identigraph(a / "src", "neo4j", "start")  # from a folder inside the checkout
        assert started.returncode == 0, started.stdout + started.stderr
        server_a = local_neo4j.status(store_a)
        assert server_a.running and str(store_a) in started.stdout.replace("\n", "")

        status_b = identigraph(b / "src" / "deep", "neo4j", "status")
        assert status_b.returncode == 1 and "not running" in status_b.stdout
        assert str(store_b) in status_b.stdout.replace("\n", "")

        # B's test run gets a server of its own, stopped afterwards; A's keeps running.
        run_b = identigraph(b, "neo4j", "run", "--", sys.executable, "-c", PROBE)
        assert run_b.returncode == 0, run_b.stdout + run_b.stderr
        store, running, pid = _probe(run_b.stdout)
        assert Path(store) == store_b and running and pid != server_a.pid
        assert not local_neo4j.status(store_b).running
        assert local_neo4j.status(store_a).pid == server_a.pid

        # A's test run finds A's server up: it uses it and leaves it running.
        run_a = identigraph(a, "neo4j", "run", "--", sys.executable, "-c", PROBE + "; raise SystemExit(3)")
        assert run_a.returncode == 3  # the command's own status
        assert _probe(run_a.stdout) == (str(store_a), True, server_a.pid)
        assert local_neo4j.status(store_a).pid == server_a.pid

        stop_b = identigraph(b, "neo4j", "stop")
        assert stop_b.returncode == 0 and "was not running" in stop_b.stdout
        assert local_neo4j.status(store_a).running
        # A pid file copied into another store names a server that does not serve it.
        store_b.mkdir(exist_ok=True)
        shutil.copy(store_a / "pid", store_b / "pid")
        assert identigraph(b, "neo4j", "stop").returncode == 0 and local_neo4j.status(store_a).running

        stop_a = identigraph(a, "neo4j", "stop")
        assert stop_a.returncode == 0 and "stopped" in stop_a.stdout
        assert not local_neo4j.status(store_a).running
    finally:
        for store in (store_a, store_b):
            local_neo4j.stop(store=store)
