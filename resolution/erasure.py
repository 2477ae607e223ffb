"""The right to erasure on resolution's artifacts: ``identigraph forget``.

A person is named by a customer id (every record resolved to it) or by one record
(``SOURCE:RECORD_ID``). Their PII is removed from ``records.parquet``, ``golden.parquet``
(the attributes those records supplied) and ``quarantine.parquet`` (raw rows withheld); ids,
scores and evidence weights stay, so the graph's structure and the accounting hold. The
record keys go to ``forgotten.jsonl`` beside the artifacts: a later ``identigraph resolve``
that reads it quarantines those records with the request's id instead of linking them again.
The list holds record keys and request ids, no PII. (``graph.erasure`` does the same for the
graph tables and Neo4j.)
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from identigraph.resolution.golden import ATTRIBUTES as GOLDEN_ATTRIBUTES
from identigraph.resolution.ingest import record_keys
from identigraph.resolution.privacy import PII_RECORD_COLUMNS

FORGOTTEN_FILE = "forgotten.jsonl"
# Record columns cleared: the PII, and the finer location columns that go with it.
ERASED_RECORD_COLUMNS = (*PII_RECORD_COLUMNS, "postcode_district", "city")
# Golden attributes cleared when supplied by an erased record (all but country and gender).
ERASED_GOLDEN_ATTRIBUTES = tuple(a for a in GOLDEN_ATTRIBUTES if a not in ("country", "gender"))


class ErasureError(ValueError):
    """The person could not be found; the message says what to pass instead."""


@dataclass
class Erasure:
    request_id: str
    at: str
    customer_id: str
    record_keys: list[str]
    scope: str  # "customer" or "record"
    artifacts: list[str] = field(default_factory=list)
    cleared_attributes: list[str] = field(default_factory=list)  # golden attributes removed from the customer
    # The customers the artifacts give the erased records (the API's merges may have renamed
    # them since), each "customer" where all its records went, else "record".
    artifact_customers: dict[str, str] = field(default_factory=dict)


def write_parquet_atomically(frame: pd.DataFrame, path: Path) -> None:
    """Write beside, then rename: a reader never sees half a file, a crash leaves the old one."""
    partial = path.with_name(path.name + ".partial")
    frame.to_parquet(partial, index=False)
    partial.replace(path)


def find_person(entities: pd.DataFrame, customer: str | None, record: str | None) -> tuple[str, list[str], str]:
    """(customer id, record keys to erase, scope) for ``--customer`` or ``--record``."""
    if (customer is None) == (record is None):
        raise ErasureError("name the person by exactly one of --customer ID or --record SOURCE:RECORD_ID")
    keys = record_keys(entities["source"], entities["record_id"])
    if customer is not None:
        chosen = entities["entity_id"] == customer
        if not chosen.any():
            raise ErasureError(f"customer {customer!r} is not in entities.parquet; look the id up with "
                               "`identigraph query customer_360` or pass --record SOURCE:RECORD_ID")
        return customer, sorted(keys[chosen]), "customer"
    if record is None:
        raise ErasureError("name what to erase: --customer ID or --record SOURCE:RECORD_ID")
    chosen = keys == record
    if not chosen.any():
        raise ErasureError(f"record {record!r} is not in entities.parquet; write it as SOURCE:RECORD_ID "
                           "(e.g. crm:C000123)")
    return str(entities.loc[chosen, "entity_id"].iloc[0]), [record], "record"


def erase_from_resolution(resolved_dir: Path, customer: str | None = None, record: str | None = None) -> Erasure:
    resolved_dir = Path(resolved_dir)
    entities_path = resolved_dir / "entities.parquet"
    if not entities_path.exists():
        raise ErasureError(f"{entities_path} is missing; pass the --out folder of `identigraph resolve`")
    entities = pd.read_parquet(entities_path)
    entity_id, keys, scope = find_person(entities, customer, record)
    return erase_keys(resolved_dir, entity_id, keys, scope, entities)


def erase_keys(resolved_dir: Path, entity_id: str, keys: list[str], scope: str,
               entities: pd.DataFrame | None = None) -> Erasure:
    """Erases the records ``keys`` of one person (customer ``entity_id`` as the caller knows
    it; ``scope`` "customer" or "record") from the artifacts, and writes them to
    forgotten.jsonl. Keys the artifacts do not hold (records written through the API since)
    are forgotten all the same. The golden records cleared are those of the customers the
    artifacts give the keys, which the API's merges may have renamed since."""
    resolved_dir = Path(resolved_dir)
    if entities is None:
        entities = pd.read_parquet(resolved_dir / "entities.parquet")
    erasure = Erasure(uuid.uuid4().hex[:12], datetime.now(timezone.utc).isoformat(timespec="seconds"), entity_id,
                      keys, scope)
    erased = set(keys)
    all_keys = record_keys(entities["source"], entities["record_id"])
    held = entities["entity_id"][all_keys.isin(erased).to_numpy()]
    # Each artifact customer of the keys: wholly erased ("customer") or in part ("record").
    erasure.artifact_customers = artifact_scope = {str(c): "customer" if scope == "customer" and set(all_keys[entities["entity_id"] == c]) <= erased
                      else "record" for c in held.unique()}

    records_path = resolved_dir / "records.parquet"
    records = pd.read_parquet(records_path)
    rows = record_keys(records["source"], records["record_id"]).isin(erased).to_numpy()
    columns = [c for c in records.columns if c in ERASED_RECORD_COLUMNS or c.startswith("text__")]
    records.loc[rows, columns] = None
    write_parquet_atomically(records, records_path)
    erasure.artifacts.append(str(records_path))

    golden_path = resolved_dir / "golden.parquet"
    if golden_path.exists():
        golden = pd.read_parquet(golden_path)
        cleared: set[str] = set()
        for customer_id, its_scope in artifact_scope.items():
            cleared |= set(clear_golden_attributes(golden, "entity_id", customer_id, erased, its_scope))
        erasure.cleared_attributes = sorted(cleared)
        write_parquet_atomically(golden, golden_path)
        erasure.artifacts.append(str(golden_path))

    quarantine_path = resolved_dir / "quarantine.parquet"
    if quarantine_path.exists():
        quarantine = pd.read_parquet(quarantine_path)
        hit = record_keys(quarantine["source"], quarantine["record_id"]).isin(erased).to_numpy()
        if hit.any():
            quarantine.loc[hit, "raw"] = f"(erased: forget request {erasure.request_id})"
            write_parquet_atomically(quarantine, quarantine_path)
            erasure.artifacts.append(str(quarantine_path))

    with open(resolved_dir / FORGOTTEN_FILE, "a", encoding="utf-8") as handle:
        for key in keys:
            handle.write(json.dumps({"record_key": key, "request_id": erasure.request_id, "at": erasure.at}) + "\n")
    return erasure


def clear_golden_attributes(golden: pd.DataFrame, id_column: str, entity_id: str, erased: set[str],
                            scope: str) -> list[str]:
    """In place: a customer's erased attributes (all, or those its erased records supplied);
    returns their names."""
    row = golden[id_column] == entity_id
    cleared = []
    for attribute in ERASED_GOLDEN_ATTRIBUTES:
        if attribute not in golden:
            continue
        provenance = f"{attribute}_from"
        hit = row if scope == "customer" or provenance not in golden else row & golden[provenance].isin(erased)
        if hit.any():
            golden.loc[hit, attribute] = None
            cleared.append(attribute)
    return cleared


def read_forgotten(path: Path) -> dict[str, str]:
    """record key -> request id, from a ``forgotten.jsonl``."""
    forgotten = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                forgotten[entry["record_key"]] = entry["request_id"]
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise ErasureError(f"{path}, line {number}: not a forget entry ({error}); the file is written by "
                                   "`identigraph forget`, restore it from a backup rather than editing it") from error
    return forgotten
