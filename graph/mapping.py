"""Bring your own graph: a mapping (TOML) from a user's CSV, TSV, JSONL or Parquet files to
the node and edge tables every later stage reads (``identigraph graph import MAPPING --out
TABLES``, docs/bring-your-own-graph.md).

    [nodes.User]                      # a label; its file holds one row per node
    file = "users.csv"
    id = "user_id"                    # the key column; its name (non-word characters as "_") the key property's
    features = ["f1", "f2"]           # numeric as they are; other columns one-hot encoded
    properties = ["name"]             # copied as they are
    [nodes.Product]                   # no file: the nodes are the ids its relationships name
    id = "product_id"
    [relationships.PURCHASED]
    file = "orders.csv"
    from = { label = "User", column = "customer" }
    to = { label = "Product", column = "sku" }
    weight = "quantity"               # optional: summed per pair
    time = "ordered_at"               # optional: first_time and last_time per pair
    properties = ["amount"]           # optional: numeric, summed per pair

Every row read is used or quarantined with a reason (``quarantine.parquet``: an unparseable
row, a missing or repeated node id, a relationship row without one of its ends or naming a
node its label's file does not hold, a time or number that does not parse): per file, read =
used + quarantined (``graph.json``). Rows of one relationship between the same two nodes
become one relationship (``count``, summed ``weight`` and properties, first and last time):
Neo4j merges a relationship on its two ends, and the tables say so up front.

The model of the tables (labels, their key, relationship types and their ends, feature
columns) is written to ``graph.json``; ``identigraph load`` reads it from there, so labels
and types come from the validated mapping, never from the data.
"""
from __future__ import annotations

import json
import re
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from identigraph.graph.build import EventAccount, GraphBuildSummary
from identigraph.graph.model import SAFE_NAME, EdgeType, GraphModel, NodeType
from identigraph.resolution.io import DELIMITERS, InputFileError, read_table_checked

# A categorical feature becomes one column per value, its commonest values only.
MAX_CATEGORIES = 50
# Columns of every relationship table after start and end.
COUNT, WEIGHT, FIRST_TIME, LAST_TIME = "count", "weight", "first_time", "last_time"
QUARANTINE_COLUMNS = ["table", "row", "reason"]


class MappingError(ValueError):
    """The mapping or one of its files is unusable; the message names where and what to do."""


@dataclass(frozen=True)
class NodeMapping:
    label: str
    id: str  # the id column of the file
    file: Path | None = None  # None: the ids the relationships name
    features: tuple[str, ...] = ()
    properties: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The key property: the id column's name with what Neo4j cannot name as "_"
        ("Customer ID" keys customer nodes by ``Customer_ID``)."""
        return re.sub(r"\W", "_", self.id)


@dataclass(frozen=True)
class RelationshipEnd:
    label: str
    column: str


@dataclass(frozen=True)
class RelationshipMapping:
    type: str
    file: Path
    start: RelationshipEnd
    end: RelationshipEnd
    weight: str | None = None
    time: str | None = None
    properties: tuple[str, ...] = ()


@dataclass(frozen=True)
class GraphMapping:
    nodes: dict[str, NodeMapping]
    relationships: dict[str, RelationshipMapping]


@dataclass
class FileAccount(EventAccount):
    file: str = ""


@dataclass
class ImportSummary(GraphBuildSummary):
    """As ``graph build`` reports, its events being the mapping's tables, and per label the
    feature columns."""

    features: dict[str, list[str]] = field(default_factory=dict)


def _name(value: object, where: str) -> str:
    if not isinstance(value, str) or not SAFE_NAME.match(value):
        raise MappingError(f"{where}: {value!r} must be letters, digits and underscores, not starting with a digit "
                           "(it becomes a Neo4j label, type or property name)")
    return value


def _columns(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MappingError(f"{where} must be a list of column names")
    return tuple(value)


def _known_keys(table: dict, allowed: set[str], where: str) -> None:
    unknown = set(table) - allowed
    if unknown:
        raise MappingError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")


def parse_mapping(data: dict, folder: Path, origin: str = "mapping") -> GraphMapping:
    """The mapping from parsed TOML; relative file names are relative to ``folder``."""
    _known_keys(data, {"nodes", "relationships"}, origin)
    if not data.get("relationships") and not data.get("nodes"):
        raise MappingError(f"{origin}: no [nodes.<Label>] or [relationships.<TYPE>] table; see "
                           "docs/bring-your-own-graph.md")

    def path(value: object, where: str) -> Path:
        if not isinstance(value, str) or not value:
            raise MappingError(f"{where}: file must be a file name")
        resolved = (folder / value) if not Path(value).is_absolute() else Path(value)
        if not resolved.is_file():
            raise MappingError(f"{where}: {resolved} is not a file")
        return resolved

    def entries(section: str, allowed: set[str]):
        """(name, table, where) of each entry of ``[section.<Name>]``, its name and keys checked."""
        for name, raw in (data.get(section) or {}).items():
            where = f"{origin} [{section}.{name}]"
            _name(name, where)
            if not isinstance(raw, dict):
                raise MappingError(f"{where} must be a table")
            _known_keys(raw, allowed, where)
            yield name, raw, where

    nodes: dict[str, NodeMapping] = {}
    for label, raw, where in entries("nodes", {"file", "id", "features", "properties"}):
        file = path(raw["file"], where) if "file" in raw else None
        if file is not None and "id" not in raw:
            raise MappingError(f"{where}: a node file needs id = \"<its id column>\"")
        nodes[label] = NodeMapping(label, str(raw.get("id", "id")), file,
                                   _columns(raw.get("features"), f"{where} features"),
                                   _columns(raw.get("properties"), f"{where} properties"))
        _name(nodes[label].key, f"{where} id")
    relationships: dict[str, RelationshipMapping] = {}
    for rel_type, raw, where in entries("relationships", {"file", "from", "to", "weight", "time", "properties"}):
        for key in ("file", "from", "to"):
            if key not in raw:
                raise MappingError(f"{where}: {key} is missing")
        ends = []
        for key in ("from", "to"):
            end = raw[key]
            if not isinstance(end, dict) or set(end) != {"label", "column"}:
                raise MappingError(f"{where}: {key} must be {{ label = \"<Label>\", column = \"<column>\" }}")
            ends.append(RelationshipEnd(_name(end["label"], f"{where} {key}.label"), str(end["column"])))
            nodes.setdefault(end["label"], NodeMapping(end["label"], "id"))
        relationships[rel_type] = RelationshipMapping(
            rel_type, path(raw["file"], where), ends[0], ends[1], raw.get("weight"), raw.get("time"),
            _columns(raw.get("properties"), f"{where} properties"))
    for label, node in nodes.items():
        if node.file is None and not any(label in (r.start.label, r.end.label) for r in relationships.values()):
            raise MappingError(f"{origin} [nodes.{label}]: no file and no relationship names it; add file = \"…\"")
    return GraphMapping(nodes, relationships)


def load_mapping(path: Path) -> GraphMapping:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise MappingError(f"{path}: no such mapping file") from error
    except tomllib.TOMLDecodeError as error:
        raise MappingError(f"{path}: not valid TOML: {error}") from error
    return parse_mapping(data, path.parent, str(path))


class _Quarantine:
    def __init__(self) -> None:
        self.parts: list[pd.DataFrame] = []

    def add(self, table: str, rows: np.ndarray, reasons) -> None:
        if len(rows):
            self.parts.append(pd.DataFrame({"table": table, "row": np.asarray(rows, dtype=np.int64),
                                            "reason": reasons}))

    def frame(self) -> pd.DataFrame:
        return (pd.concat(self.parts, ignore_index=True) if self.parts
                else pd.DataFrame({"table": pd.Series(dtype=object), "row": pd.Series(dtype=np.int64),
                                   "reason": pd.Series(dtype=object)}))


def _read(path: Path, columns: list[str], entry: str, quarantine: _Quarantine,
          account: FileAccount) -> tuple[pd.DataFrame, np.ndarray]:
    """The file's rows (as text) that parse, and each one's 0-based data row; the others
    quarantined."""
    try:
        result = read_table_checked(path)
    except (InputFileError, OSError, ValueError) as error:
        raise MappingError(f"{entry}: {error}") from error
    missing = [c for c in columns if c not in result.table.column_names]
    if missing:
        raise MappingError(f"{entry}: column(s) {missing} are not in {path.name}; its columns are "
                           f"{result.table.column_names}")
    frame = result.table.to_pandas()
    account.read = len(frame) + len(result.bad_rows)
    # 0-based data rows: a delimited file's line 2 is row 0, a JSON-lines file's line 1.
    header = 1 if path.suffix.lower() in DELIMITERS else 0
    bad = [b.line - 1 - header if b.line is not None else -1 for b in result.bad_rows]
    quarantine.add(entry, np.asarray(bad, dtype=np.int64), [f"unparseable row: {b.error}" for b in result.bad_rows])
    numbers = np.arange(account.read)
    numbers = numbers[~np.isin(numbers, [r for r in bad if r >= 0])][:len(frame)]
    return frame, numbers


def _text(values: pd.Series) -> pd.Series:
    """Values as trimmed text, an empty one missing."""
    text = values.astype("string").str.strip()
    return text.mask(text == "")


def _ids(values: pd.Series) -> pd.Series:
    """Ids as text (``_text``), whole numbers stored as floats ("12.0") as "12"."""
    text = _text(values)
    whole = text.str.fullmatch(r"-?\d+\.0+").fillna(False)
    return text.mask(whole, text.str.replace(r"\.0+$", "", regex=True))


def _numbers(values: pd.Series) -> pd.Series:
    return pd.to_numeric(_text(values), errors="coerce")


def _feature_columns(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """Numeric features as float32 (missing stays missing); a column whose present values
    are mostly not numbers is categorical: one 0/1 column per common value, ``column=value``."""
    out = {}
    for column in columns:
        text = _text(frame[column])
        present = text.dropna()
        numbers = pd.to_numeric(text, errors="coerce")
        if len(present) == 0 or numbers.notna().sum() >= 0.95 * len(present):
            out[column] = numbers.astype("float32")
            continue
        for value in present.value_counts().index[:MAX_CATEGORIES]:
            out[f"{column}={value}"] = (text == value).fillna(False).astype("float32")
    return pd.DataFrame(out, index=frame.index)


def _node_table(node: NodeMapping, quarantine: _Quarantine, account: FileAccount) -> pd.DataFrame:
    entry = f"nodes.{node.label}"
    if node.file is None:
        raise MappingError(f"[{entry}] names no file: its nodes are the ids its relationships name")
    frame, numbers = _read(node.file, [node.id, *node.features, *node.properties], entry, quarantine, account)
    ids = _ids(frame[node.id])
    missing = ids.isna().to_numpy()
    repeated = (ids.duplicated(keep="first") & ~ids.isna()).to_numpy()
    quarantine.add(entry, numbers[missing], f"missing id in column {node.id!r}")
    quarantine.add(entry, numbers[repeated], [f"duplicate id {v!r} in column {node.id!r}" for v in ids[repeated]])
    keep = ~(missing | repeated)
    frame, ids = frame[keep], ids[keep]
    table = pd.concat([pd.DataFrame({node.key: ids.astype(object)}, index=frame.index),
                       _feature_columns(frame, node.features),
                       frame[list(node.properties)].astype("string")], axis=1)
    account.used = len(table)
    account.quarantined = account.read - account.used
    return table.reset_index(drop=True)


def _relationship_table(rel: RelationshipMapping, known: dict[str, set[str] | None], quarantine: _Quarantine,
                        account: FileAccount) -> pd.DataFrame:
    entry = f"relationships.{rel.type}"
    columns = [rel.start.column, rel.end.column, *([rel.weight] if rel.weight else []),
               *([rel.time] if rel.time else []), *rel.properties]
    frame, numbers = _read(rel.file, list(dict.fromkeys(columns)), entry, quarantine, account)
    reasons = pd.Series(pd.NA, index=frame.index, dtype=object)

    def reject(mask: pd.Series, reason) -> None:
        mask = mask.fillna(False) & reasons.isna()
        if isinstance(reason, pd.Series):
            reasons[mask] = reason[mask]
        else:
            reasons[mask] = reason

    start, end = _ids(frame[rel.start.column]), _ids(frame[rel.end.column])
    for ids, side in ((start, rel.start), (end, rel.end)):
        reject(ids.isna(), f"no {side.label} in column {side.column!r}")
        if known.get(side.label) is not None:
            unknown = ~ids.isin(known[side.label]) & ids.notna()
            reject(unknown, f"{side.label} " + ids.astype(object).map(repr) + f" is not among the {side.label} nodes")
    values = {}
    for column in [*([rel.weight] if rel.weight else []), *rel.properties]:
        values[column] = _numbers(frame[column])
        present = _text(frame[column]).notna()
        reject(values[column].isna() & present, f"{column} " + frame[column].astype(object).map(repr) + " is not a number")
    times = None
    if rel.time:
        times = pd.to_datetime(_text(frame[rel.time]), errors="coerce", format="mixed")
        reject(times.isna(), f"{rel.time} " + frame[rel.time].astype(object).map(repr) + " is not a date or time")
    bad = reasons.notna().to_numpy()
    quarantine.add(entry, numbers[bad], reasons[bad].tolist())
    keep = ~bad
    used = pd.DataFrame({"start": start[keep].astype(object), "end": end[keep].astype(object)})
    used[COUNT] = 1
    for column, series in values.items():
        used[WEIGHT if column == rel.weight else column] = series[keep].fillna(0).to_numpy()
        if column == rel.weight and column in rel.properties:
            used[column] = used[WEIGHT]
    if times is not None:
        used[FIRST_TIME] = used[LAST_TIME] = times[keep].to_numpy()
    aggregations = {c: ("sum" if c not in (FIRST_TIME, LAST_TIME) else ("min" if c == FIRST_TIME else "max"))
                    for c in used.columns if c not in ("start", "end")}
    table = used.groupby(["start", "end"], sort=True, as_index=False).agg(aggregations)
    account.used = int(keep.sum())
    account.quarantined = account.read - account.used
    return table


def import_graph(mapping: GraphMapping, out_dir: Path, progress: Callable[[str], None] | None = None) -> ImportSummary:
    """The mapping's files -> ``out_dir/nodes/<Label>.parquet``, ``edges/<TYPE>.parquet``,
    ``quarantine.parquet`` and ``graph.json`` (counts, model, feature columns)."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    (out_dir / "nodes").mkdir(parents=True, exist_ok=True)
    (out_dir / "edges").mkdir(parents=True, exist_ok=True)
    quarantine = _Quarantine()
    accounts: dict[str, EventAccount] = {}
    node_tables: dict[str, pd.DataFrame] = {}
    for node in mapping.nodes.values():
        if node.file is not None:
            if progress:
                progress(f"nodes {node.label} from {node.file.name}")
            accounts[f"nodes.{node.label}"] = account = FileAccount(file=node.file.name)
            node_tables[node.label] = _node_table(node, quarantine, account)
    known = {label: set(table[mapping.nodes[label].key]) for label, table in node_tables.items()}
    edge_tables: dict[str, pd.DataFrame] = {}
    for rel in mapping.relationships.values():
        if progress:
            progress(f"relationships {rel.type} from {rel.file.name}")
        accounts[f"relationships.{rel.type}"] = account = FileAccount(file=rel.file.name)
        edge_tables[rel.type] = _relationship_table(rel, {k: known.get(k) for k in mapping.nodes}, quarantine, account)
    for node in mapping.nodes.values():
        if node.file is None:  # the ids its relationships name, in key order
            named = [t[side] for rel, t in ((mapping.relationships[k], v) for k, v in edge_tables.items())
                     for side, end in (("start", rel.start), ("end", rel.end)) if end.label == node.label]
            ids = pd.concat(named, ignore_index=True).drop_duplicates() if named else pd.Series([], dtype=object)
            node_tables[node.label] = pd.DataFrame({node.key: sorted(ids.astype(str))})
    for label, table in node_tables.items():
        table.to_parquet(out_dir / "nodes" / f"{label}.parquet", index=False)
    for rel_type, table in edge_tables.items():
        table.to_parquet(out_dir / "edges" / f"{rel_type}.parquet", index=False)
    quarantine.frame().to_parquet(out_dir / "quarantine.parquet", index=False)
    features = {label: [c for c in table.columns if c != mapping.nodes[label].key
                        and c not in mapping.nodes[label].properties] for label, table in node_tables.items()}
    model = GraphModel(
        {label: NodeType(label, mapping.nodes[label].key, f"imported from {m.file.name if m.file else 'relationships'}")
         for label, m in mapping.nodes.items()},
        {t: EdgeType(t, r.start.label, r.end.label, f"imported from {r.file.name}") for t, r in mapping.relationships.items()})
    summary = ImportSummary(out_dir, {label: len(t) for label, t in node_tables.items()},
                            {t: len(table) for t, table in edge_tables.items()}, accounts,
                            round(time.perf_counter() - started, 3),
                            features={label: cols for label, cols in features.items() if cols})
    (out_dir / "graph.json").write_text(json.dumps({**summary.to_json(), "model": model.to_json()}, indent=2))
    return summary
