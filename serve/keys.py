"""API keys: random tokens handed out once, kept only as SHA-256 hashes with a name and
scopes, in a JSON file (``--keys FILE`` or ``$IDENTIGRAPH_API_KEYS_FILE``)."""
from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

KEYS_FILE_ENV = "IDENTIGRAPH_API_KEYS_FILE"
# read: customers with their PII, similar customers; write: add and erase records;
# risk: ids, scores and reasons, never PII; admin: everything, erasing whole customers too.
SCOPES = ("read", "write", "risk", "admin")
TOKEN_PREFIX = "ig_"


class KeyFileError(ValueError):
    """The keys file is missing or malformed; the message says which and how to make one."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    sha256: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_scopes(scopes: list[str] | tuple[str, ...], where: str) -> frozenset[str]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise KeyFileError(f"{where}: scopes must be some of {', '.join(SCOPES)}; got {list(scopes)}")
    return frozenset(scopes)


class KeyRing:
    """The keys a server accepts, looked up by the hash of the presented token."""

    def __init__(self, keys: list[ApiKey]):
        self.by_digest = {key.sha256: key for key in keys}

    def __len__(self) -> int:
        return len(self.by_digest)

    def authenticate(self, token: str | None) -> ApiKey | None:
        if not token:
            return None
        return self.by_digest.get(digest(token))

    @classmethod
    def load(cls, path: Path | None) -> KeyRing:
        path = path or (Path(os.environ[KEYS_FILE_ENV]) if os.environ.get(KEYS_FILE_ENV) else None)
        if path is None:
            raise KeyFileError(f"no API keys: pass --keys FILE or set ${KEYS_FILE_ENV}; make a key with "
                               "`identigraph api-key add NAME --scopes read --keys FILE`")
        if not Path(path).exists():
            raise KeyFileError(f"{path}: no such keys file; make one with "
                               f"`identigraph api-key add NAME --scopes read --keys {path}`")
        try:
            entries = json.loads(Path(path).read_text()).get("keys", [])
            keys = [ApiKey(str(e["name"]), str(e["sha256"]), _check_scopes(list(e["scopes"]), f"{path}: {e['name']}"))
                    for e in entries]
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
            raise KeyFileError(f"{path}: not a keys file ({error}); expected "
                               '{"keys": [{"name": ..., "sha256": ..., "scopes": [...]}]}') from error
        if not keys:
            raise KeyFileError(f"{path} holds no keys; add one with `identigraph api-key add`")
        return cls(keys)


def add_key(path: Path, name: str, scopes: list[str]) -> str:
    """Adds a new key named ``name`` to the file (created if missing) and returns its token,
    which is shown this once: only its hash is stored."""
    checked = _check_scopes(scopes, name)
    path = Path(path)
    data = json.loads(path.read_text()) if path.exists() else {"keys": []}
    if any(entry.get("name") == name for entry in data["keys"]):
        raise KeyFileError(f"{path} already has a key named {name!r}; choose another name")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    data["keys"].append({"name": name, "sha256": digest(token), "scopes": sorted(checked)})
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n")
    os.chmod(temporary, 0o600)
    temporary.replace(path)
    return token
