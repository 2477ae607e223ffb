"""Run a benchmark's code in a fresh Python process: its own wall time and peak memory."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PEAK_RSS = ("import re\n"
            "def peak_rss_mb():\n"
            "    # VmHWM restarts with the address space exec creates; ru_maxrss survives fork+exec\n"
            "    # and would report the benchmark parent's size.\n"
            "    status = open('/proc/self/status').read()\n"
            "    return int(re.search(r'VmHWM:\\s+(\\d+)', status).group(1)) / 1024\n")


def peak_of(code: str, spec: dict) -> dict:
    """Run ``code`` in a fresh process; its last line of JSON plus its own peak RSS."""
    wrapper = (PEAK_RSS + "import sys, json\n"
               f"sys.path.insert(0, {str(ROOT)!r})\n"
               f"sys.argv = ['x', {json.dumps(json.dumps(spec))}]\n"
               f"exec(compile({code!r}, 'child', 'exec'))\n"
               "print(json.dumps({'peak_rss_mb': peak_rss_mb()}))\n")
    started = time.perf_counter()
    # A scratch working directory: DuckDB (Splink) spills into ./.tmp, which must not land in the checkout.
    with tempfile.TemporaryDirectory() as scratch:
        process = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, cwd=scratch)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        return {"error": (process.stderr.strip().splitlines() or ["failed"])[-1], "wall_s": wall}
    lines = process.stdout.strip().splitlines()
    result = json.loads(lines[-2])
    result.update(json.loads(lines[-1]))
    result["wall_s"] = wall
    return result
