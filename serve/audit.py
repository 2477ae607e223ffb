"""The API's audit log: one JSON line per call, appended to ``api_audit.jsonl`` of the served
folder. Who (the key's name), what (method and route, with the ids in the path), the outcome
(status) and how long it took; never a request or response body."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path

API_AUDIT_FILE = "api_audit.jsonl"


class ApiAudit:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._handle = open(self.path, "a", encoding="utf-8")

    def record(self, who: str | None, method: str, path: str, status: int, milliseconds: float) -> None:
        entry = {"at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "key": who,
                 "method": method, "path": path, "status": status, "ms": round(milliseconds, 2)}
        line = json.dumps(entry) + "\n"
        with self._lock:
            self._handle.write(line)
            self._handle.flush()

    def close(self) -> None:
        with self._lock:
            self._handle.close()
