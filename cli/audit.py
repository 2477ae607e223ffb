"""The audit log: one JSON line per command run, in ``audit.jsonl`` of the folder it wrote.

Who (the operating-system user), when (UTC), which command with which options, the inputs
by SHA-256 (a file's content; a folder's readable files one by one), the outputs by SHA-256
too, and the outcome. Passwords and keys are never options here (they come from the
environment), and values of records never appear: an entry names files and ids only.
"""
from __future__ import annotations

import getpass
import hashlib
import json
import socket
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

AUDIT_FILE = "audit.jsonl"
_HASHED_SUFFIXES = {".csv", ".jsonl", ".parquet", ".json", ".toml", ".pt", ".html"}


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe(paths: Sequence[Path | str]) -> list[dict]:
    """Path, size and SHA-256 of each file, and of the data files directly inside each folder."""
    described: list[dict] = []
    for item in paths:
        if "://" in str(item):  # on a Hadoop file system: named, not read here
            described.append({"path": str(item)})
            continue
        path = Path(item)
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in _HASHED_SUFFIXES
                       and p.name != AUDIT_FILE) if path.is_dir() else [path] if path.is_file() else []
        described += [{"path": str(f), "bytes": f.stat().st_size, "sha256": file_digest(f)} for f in files]
    return described


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "unknown"


def record_run(folder: Path | str, command: str, options: dict, inputs: Sequence[Path | str],
               outputs: Sequence[Path | str],
               outcome: str = "ok") -> dict:
    """Appends one entry to ``folder/audit.jsonl`` and returns it."""
    try:
        version = metadata.version("identigraph")
    except metadata.PackageNotFoundError:
        version = "unknown"
    entry = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "user": _user(),
             "host": socket.gethostname(), "identigraph": version, "command": command,
             "options": {k: str(v) if isinstance(v, Path) else v for k, v in options.items()},
             "inputs": describe(inputs), "outputs": describe(outputs), "outcome": outcome}
    line = json.dumps(entry, ensure_ascii=False) + "\n"
    if "://" in str(folder):
        # A run's folder on a Hadoop file system (resolve --engine spark): written whole, since
        # object stores cannot append; the folder is that run's own.
        from identigraph.resolution.spark.artifacts import write_text

        write_text(str(folder), AUDIT_FILE, line)
        return entry
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / AUDIT_FILE, "a", encoding="utf-8") as handle:
        handle.write(line)
    return entry
