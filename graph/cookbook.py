"""The analysts' cookbook: named, parameterised ``.cypher`` files in ``cypher/``.

Each file opens with comment lines: ``// <name>: <what it answers>`` and one
``// param: <name> <type> [= <default>] — <meaning>`` per parameter (types: string, int,
float, bool). Queries run in READ access mode, like ad-hoc Cypher: the server refuses a
write in a read transaction, so neither can change the graph.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import neo4j

from identigraph.resolution.privacy import mask

COOKBOOK_DIR = Path(__file__).resolve().parents[1] / "cypher"
NOT_QUERIES = {"schema"}
PARAM_LINE = re.compile(r"^//\s*param:\s*(?P<name>\w+)\s+(?P<type>string|int|float|bool)"
                        r"(?:\s*=\s*(?P<default>\S+))?\s*(?:—|-)?\s*(?P<help>.*)$")
CASTS: dict[str, Callable[[str], object]] = {"string": str, "int": int, "float": float, "bool": lambda v: v.lower() in ("1", "true", "yes")}


class QueryError(ValueError):
    """A cookbook query is unknown, or its parameters are missing or malformed."""


class ReadOnlyViolation(QueryError):
    """Ad-hoc Cypher tried to write; queries run in READ access mode."""


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    default: str | None
    help: str

    def parse(self, text: str):
        try:
            return CASTS[self.type](text)
        except ValueError:
            # The text may be a person's e-mail or phone typed into the wrong parameter.
            raise QueryError(f"parameter {self.name} must be {self.type}, got {mask(text)} (masked)") from None


@dataclass(frozen=True)
class CookbookQuery:
    name: str
    description: str
    text: str
    path: Path
    parameters: list[Parameter] = field(default_factory=list)

    def bind(self, given: dict[str, str]) -> dict:
        """Typed parameters from ``key=value`` strings, defaults filled in."""
        known = {p.name for p in self.parameters}
        unknown = set(given) - known
        if unknown:
            raise QueryError(f"{self.name} takes no parameter {sorted(unknown)}; it takes "
                             f"{', '.join(sorted(known)) or 'none'}")
        values = {}
        for parameter in self.parameters:
            if parameter.name in given:
                values[parameter.name] = parameter.parse(given[parameter.name])
            elif parameter.default is not None:
                values[parameter.name] = parameter.parse(parameter.default)
            else:
                raise QueryError(f"{self.name} needs --param {parameter.name}=… ({parameter.help})")
        return values


def parse_query_file(path: Path) -> CookbookQuery:
    lines = path.read_text().splitlines()
    header = []
    for line in lines:
        if not line.startswith("//"):
            break
        header.append(line)
    if not header or ":" not in header[0]:
        raise QueryError(f"{path}: the first line must be `// {path.stem}: what the query answers`")
    name, _, first = header[0][2:].partition(":")
    description = " ".join([first.strip()] + [h[2:].strip() for h in header[1:] if not PARAM_LINE.match(h)])
    parameters = []
    for line in header:
        match = PARAM_LINE.match(line)
        if match:
            parameters.append(Parameter(match["name"], match["type"], match["default"], match["help"].strip()))
    body = "\n".join(lines[len(header):]).strip().rstrip(";")
    return CookbookQuery(name.strip(), description, body, path, parameters)


def cookbook(directory: Path = COOKBOOK_DIR) -> dict[str, CookbookQuery]:
    queries = {}
    for path in sorted(directory.glob("*.cypher")):
        if path.stem in NOT_QUERIES:
            continue
        query = parse_query_file(path)
        queries[query.name] = query
    return queries


def run_read_query(driver: neo4j.Driver, text: str, parameters: dict | None = None,
                   database: str = "neo4j") -> tuple[list[str], list[dict]]:
    """(column names, rows) of a query run in a READ transaction."""
    def work(tx):
        result = tx.run(text, parameters or {})
        rows = [record.data() for record in result]
        return list(result.keys()), rows

    try:
        # No notifications: "label Segment does not exist yet" is the expected state before
        # the segmentation stage ran, not something to print on every query.
        with driver.session(database=database, default_access_mode=neo4j.READ_ACCESS,
                            notifications_min_severity="OFF") as session:
            return session.execute_read(work)
    except neo4j.exceptions.ClientError as error:
        if "AccessMode" in (error.code or "") or "read access mode" in (error.message or "").lower():
            raise ReadOnlyViolation("this query writes, and queries run read-only: use "
                                    "`identigraph load` to change the graph") from error
        raise QueryError(f"Neo4j refused the query: {error.message}") from error


def run_cookbook_query(driver: neo4j.Driver, name: str, given: dict[str, str] | None = None,
                       database: str = "neo4j", directory: Path = COOKBOOK_DIR) -> tuple[list[str], list[dict]]:
    queries = cookbook(directory)
    if name not in queries:
        raise QueryError(f"no cookbook query {name!r}; available: {', '.join(sorted(queries))}")
    query = queries[name]
    return run_read_query(driver, query.text, query.bind(given or {}), database)
