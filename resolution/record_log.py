"""The log of records written through the API (``identigraph serve``'s ``POST /v1/records``):
``api_records.jsonl`` in the resolved folder, one JSON line per acknowledged write.

A line is written and fsynced before its write is acknowledged, and carries a CRC-32 of
itself: after a crash (``kill -9``, power loss) the log holds every acknowledged write, and
a last line cut short is recognised and dropped (it was never acknowledged). A line that
fails its check anywhere else means the file was damaged after it was written: the server
refuses to start and says where, rather than guessing.

Each line is one write: the record as sent (``source``, ``record_id``, its values by
semantic type in ``fields``), the customer it joined (``customer_id``), every other
record whose customer the write changed (``reassigned``: a merge renames a customer's
records), and the lineage ``events`` (merges, splits) it caused. Replaying the lines in
order gives the served state; ``identigraph resolve --previous DIR`` reads the same lines
as a batch of new records whose customers are the ids the API gave them.
"""
from __future__ import annotations

import json
import os
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RECORD_LOG_FILE = "api_records.jsonl"


class RecordLogError(ValueError):
    """The log is damaged where a crash cannot have left it; the message names the line."""


def _checksum(entry: dict[str, Any]) -> str:
    body = json.dumps({k: v for k, v in entry.items() if k != "crc"}, sort_keys=True, ensure_ascii=False)
    return f"{zlib.crc32(body.encode()):08x}"


def encode_entry(entry: dict[str, Any]) -> bytes:
    return (json.dumps({**entry, "crc": _checksum(entry)}, ensure_ascii=False) + "\n").encode()


@dataclass
class LoggedRecords:
    """The log read back: its entries in order, and what they add up to."""
    entries: list[dict[str, Any]] = field(default_factory=list)
    valid_bytes: int = 0  # the length of the log's whole, checked lines
    torn_bytes: int = 0  # a last line cut short by a crash

    def customer_of(self) -> dict[str, str]:
        """record key -> its customer after every write: the written records' and the
        earlier records a merge or split moved."""
        customers: dict[str, str] = {}
        for entry in self.entries:
            customers.update(entry.get("reassigned", {}))
            customers[f"{entry['source']}:{entry['record_id']}"] = entry["customer_id"]
        return customers

    def events(self) -> list[dict[str, Any]]:
        return [event for entry in self.entries for event in entry.get("events", [])]


def _entry(line: bytes) -> dict[str, Any] | None:
    """The line's entry, None where it fails its checksum (or is no JSON object)."""
    try:
        entry = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return entry if isinstance(entry, dict) and entry.get("crc") == _checksum(entry) else None


def read_record_log(path: Path) -> LoggedRecords:
    """The checked entries. The log ends at its first bad line: what follows it may only be
    more bad lines or a line without its newline (a crash's torn tail, never acknowledged);
    a good line after a bad one is damage, refused with the line named."""
    path = Path(path)
    logged = LoggedRecords()
    if not path.exists():
        return logged
    data = path.read_bytes()
    complete = data.split(b"\n")[:-1]  # what follows the last newline is a torn line, or nothing
    offset, bad_at = 0, None
    for number, line in enumerate(complete, start=1):
        entry = _entry(line)
        if entry is None:
            bad_at = bad_at or number
            continue
        if bad_at is not None:
            raise RecordLogError(f"{path}, line {bad_at}: damaged (its checksum fails) but followed by good lines, "
                                 "so not a write a crash cut short; restore the file from a backup")
        logged.entries.append(entry)
        offset += len(line) + 1
    logged.valid_bytes = offset
    logged.torn_bytes = len(data) - offset
    return logged


class RecordLog:
    """Appends writes to the log: ``append`` returns once they are on disk (fsync)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.read = read_record_log(self.path)
        if self.read.torn_bytes:  # a write cut short by a crash was never acknowledged: drop it
            with open(self.path, "r+b") as handle:
                handle.truncate(self.read.valid_bytes)
                os.fsync(handle.fileno())
        self._lock = threading.Lock()
        self._handle = open(self.path, "ab")
        self._sync_folder()

    def _sync_folder(self) -> None:
        """The file's entry in its folder is on disk too (a new file survives a crash)."""
        folder = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    def append(self, entries: list[dict[str, Any]]) -> None:
        data = b"".join(encode_entry(e) for e in entries)
        with self._lock:
            self._handle.write(data)
            self._handle.flush()
            os.fsync(self._handle.fileno())

    def erase(self, keys: set[str], request_id: str) -> bool:
        """The values of the records ``keys`` taken out of the log: it is rewritten beside,
        fsynced and renamed over itself (the log must not keep what was erased; a crash
        leaves the old or the new one), each of their lines keeping its place with
        ``fields`` emptied and ``erased`` naming the request. True where it held any."""
        with self._lock:
            entries = read_record_log(self.path).entries
            hit = False
            for entry in entries:
                if f"{entry['source']}:{entry['record_id']}" in keys and not entry.get("erased"):
                    entry["fields"], entry["erased"] = {}, request_id
                    hit = True
            if not hit:
                return False
            partial = self.path.with_name(self.path.name + ".partial")
            with open(partial, "wb") as handle:
                handle.write(b"".join(encode_entry(e) for e in entries))
                handle.flush()
                os.fsync(handle.fileno())
            self._handle.close()
            partial.replace(self.path)
            self._sync_folder()
            self._handle = open(self.path, "ab")
            return True

    def close(self) -> None:
        with self._lock:
            self._handle.close()
