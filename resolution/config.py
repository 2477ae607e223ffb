"""The linkage config (``linkage.toml``): a stable contract, documented in docs/cli.md.

    id_column = "unique_id"          # default id column of every source; without one anywhere,
                                     # a record's id is its row number (first data row = 1)
    source_column = "source"         # optional: a column naming the source of each row (else the file stem)
    [fields]                         # column name = semantic type, for every source
    first_name = "first_name"
    [sources.crm]                    # per input file stem: its own id column and fields
    id_column = "crm_id"
    [sources.crm.fields]
    forename = "first_name"
    [model]                          # optional; defaults below
    match_threshold = 0.9
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from identigraph.resolution import semantic_types

SEMANTIC_TYPES = semantic_types.NAMES
LINK_TYPES = ("link_and_dedupe", "link_only", "dedupe_only")


class ConfigError(ValueError):
    """The config is invalid; the message names the file, the key and what to do."""


@dataclass(frozen=True)
class ModelSettings:
    # Pairs at or above this probability are merged (subject to the clustering guard).
    match_threshold: float = 0.9
    # Scored pairs below this probability forbid their two records from sharing a cluster.
    cannot_link_threshold: float = 0.01
    # Pairs between the two thresholds are the clerical-review band.
    review_threshold: float = 0.5
    # Scored pairs below this probability are not written to pairs.parquet.
    pairs_floor: float = 0.01
    link_type: str = "link_and_dedupe"
    # Whether a source holds each entity at most once (a guide lists a restaurant once, a
    # voter file a voter once), so that each record links to at most one record of each
    # other source, its best: true, false, or "auto" (judged per source from the matches:
    # clustering.sources_holding_entities_once).
    one_to_one: bool | str = "auto"
    # Between two such sources, the best partner links at this probability or above: with
    # one partner at most there is no chain of look-alikes for match_threshold to guard
    # against, and even odds is the decision with the fewest expected errors.
    one_to_one_threshold: float = 0.5
    # Region of phone numbers written without a country code; unset: judged per source from
    # its numbers (standardise.infer_phone_region).
    default_phone_region: str | None = None
    # Blocks with more records than this are skipped and reported (they explode quadratically).
    max_block_size: int = 500
    # Record pairs sampled at random to estimate u (the chance a field agrees by coincidence).
    u_sample_pairs: int = 2_000_000
    em_max_iterations: int = 50
    em_tolerance: float = 1e-5
    # An e-mail, phone or identifier value whose records carry more different given names than
    # this is treated as shared (family line, reused junk value) and gives no evidence.
    shared_value_limit: int = 2
    seed: int = 42

    def __post_init__(self) -> None:
        for name in ("match_threshold", "cannot_link_threshold", "review_threshold", "pairs_floor",
                     "one_to_one_threshold"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"[model] {name} must be between 0 and 1, got {value}")
        if not self.cannot_link_threshold <= self.review_threshold <= self.match_threshold:
            raise ConfigError("[model] needs cannot_link_threshold <= review_threshold <= match_threshold")
        if self.link_type not in LINK_TYPES:
            raise ConfigError(f"[model] link_type must be one of {LINK_TYPES}, got {self.link_type!r}")
        if self.one_to_one not in (True, False, "auto"):
            raise ConfigError(f'[model] one_to_one must be true, false or "auto", got {self.one_to_one!r}')
        if self.max_block_size < 2:
            raise ConfigError("[model] max_block_size must be at least 2")


@dataclass(frozen=True)
class SourceConfig:
    id_column: str  # "" (ROW_NUMBER): the record id is the row number in the file, first data row = 1
    fields: dict[str, str]  # column -> semantic type
    # A column naming each row's source (one file holding several systems' records); rows
    # without a value, and files without such a column, are the source named by the file stem.
    source_column: str | None = None


ROW_NUMBER = ""


@dataclass(frozen=True)
class LinkageConfig:
    id_column: str | None = None
    source_column: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    model: ModelSettings = field(default_factory=ModelSettings)

    def for_source(self, stem: str) -> SourceConfig:
        """The id column and fields of one input file, the source table over the defaults."""
        own = self.sources.get(stem)
        id_column = (own.id_column if own and own.id_column else self.id_column) or ROW_NUMBER
        merged = dict(self.fields)
        if own:
            merged.update(own.fields)
        source_column = (own.source_column if own and own.source_column else self.source_column) or None
        return SourceConfig(id_column=id_column, fields=merged, source_column=source_column)

    @property
    def types_used(self) -> set[str]:
        used = set(self.fields.values())
        for source in self.sources.values():
            used |= set(source.fields.values())
        return used - {"ignore"}


def _check_fields(raw: object, where: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table of column = \"type\"")
    for column, kind in raw.items():
        if kind not in SEMANTIC_TYPES:
            raise ConfigError(f"{where}: column {column!r} has unknown type {kind!r}; "
                              f"use one of {', '.join(SEMANTIC_TYPES)}")
    return dict(raw)


def parse_config(data: dict, origin: str = "config") -> LinkageConfig:
    known = {"id_column", "source_column", "fields", "sources", "model"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{origin}: unknown top-level keys {sorted(unknown)}; expected {sorted(known)}")
    sources = {}
    for stem, raw in data.get("sources", {}).items():
        if not isinstance(raw, dict):
            raise ConfigError(f"{origin}: [sources.{stem}] must be a table")
        sources[stem] = SourceConfig(id_column=raw.get("id_column", ""),
                                     fields=_check_fields(raw.get("fields", {}), f"{origin} [sources.{stem}.fields]"),
                                     source_column=raw.get("source_column"))
    model_raw = data.get("model", {})
    allowed = {f.name for f in fields(ModelSettings)}
    bad = set(model_raw) - allowed
    if bad:
        raise ConfigError(f"{origin}: unknown [model] settings {sorted(bad)}; allowed: {sorted(allowed)}")
    try:
        model = replace(ModelSettings(), **model_raw)
    except (TypeError, ConfigError) as error:
        raise ConfigError(f"{origin}: {error}") from error
    config = LinkageConfig(
        id_column=data.get("id_column"), source_column=data.get("source_column"),
        fields=_check_fields(data.get("fields", {}), f"{origin} [fields]"), sources=sources, model=model)
    if not config.types_used:
        raise ConfigError(f"{origin}: no column is mapped to a semantic type; add a [fields] table")
    return config


def load_config(path: Path) -> LinkageConfig:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ConfigError(f"{path}: no such config file") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from error
    return parse_config(data, str(path))


def _toml_value(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() else _toml_value(key)


def config_to_toml(config: LinkageConfig, header: str = "") -> str:
    lines = [f"# {line}" for line in header.splitlines()]
    if config.id_column:
        lines.append(f"id_column = {_toml_value(config.id_column)}")
    if config.source_column:
        lines.append(f"source_column = {_toml_value(config.source_column)}")
    if config.fields:
        lines.append("\n[fields]")
        lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in config.fields.items()]
    for stem, source in config.sources.items():
        lines.append(f"\n[sources.{_toml_key(stem)}]")
        if source.id_column:
            lines.append(f"id_column = {_toml_value(source.id_column)}")
        if source.source_column:
            lines.append(f"source_column = {_toml_value(source.source_column)}")
        lines.append(f"[sources.{_toml_key(stem)}.fields]")
        lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in source.fields.items()]
    defaults = ModelSettings()
    changed = {f.name: getattr(config.model, f.name) for f in fields(ModelSettings)
               if getattr(config.model, f.name) != getattr(defaults, f.name)}
    if changed:
        lines.append("\n[model]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in changed.items()]
    return "\n".join(lines) + "\n"
