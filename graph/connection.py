"""Where the Neo4j server is and how to log in, resolved from the environment.

Order: ``NEO4J_URI`` (+ ``NEO4J_USER``, ``NEO4J_PASSWORD``, ``NEO4J_DATABASE``) when set;
otherwise the local launcher's server (``identigraph neo4j start``) when it is running.
The password never appears in ``repr`` or in error messages.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import neo4j

# The Bolt schemes; the driver's http(s) Query API is a preview that cannot run our write
# transactions, so an http URI is a mistake to name, not a transport to try.
BOLT_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")


class Neo4jNotConfigured(RuntimeError):
    """No server was named in the environment and the local launcher is not running."""


def check_uri(uri: str) -> str:
    """The URI when the driver can use it for our work, else a one-line reason why not."""
    parts = urlsplit(uri)
    if parts.scheme not in BOLT_SCHEMES or not parts.hostname:
        shown = uri.replace(parts.password, "***") if parts.password else uri  # a password written into the URI
        raise Neo4jNotConfigured(
            f"{shown!r} is not a Neo4j Bolt address: use bolt://HOST:7687 (or neo4j://, or +s / +ssc for TLS)")
    return uri


def retry_seconds_from_env() -> float:
    """How long the driver retries a transaction after transient errors, with exponential
    back-off: ``$IDENTIGRAPH_NEO4J_RETRY_S``, else the driver's 30 s."""
    value = os.environ.get("IDENTIGRAPH_NEO4J_RETRY_S", "30")
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise Neo4jNotConfigured(f"IDENTIGRAPH_NEO4J_RETRY_S={value!r}: give a number of seconds, 0 or more")
    return seconds


@dataclass(frozen=True)
class Neo4jSettings:
    uri: str
    user: str = "neo4j"
    password: str = field(default="", repr=False)
    database: str = "neo4j"
    retry_s: float = field(default_factory=retry_seconds_from_env)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Neo4jSettings | None":
        """Settings named by ``NEO4J_*`` variables, or None when ``NEO4J_URI`` is unset."""
        env = os.environ if environ is None else environ
        uri = env.get("NEO4J_URI", "").strip()
        if not uri:
            return None
        password = env.get("NEO4J_PASSWORD", "")
        if not password:
            raise Neo4jNotConfigured(
                f"NEO4J_URI is set to {uri} but NEO4J_PASSWORD is empty: "
                "export NEO4J_PASSWORD with the server's password."
            )
        return cls(
            uri=check_uri(uri),
            user=env.get("NEO4J_USER", "neo4j") or "neo4j",
            password=password,
            database=env.get("NEO4J_DATABASE", "neo4j") or "neo4j",
        )

    def driver(self) -> neo4j.Driver:
        return neo4j.GraphDatabase.driver(self.uri, auth=(self.user, self.password),
                                          max_transaction_retry_time=self.retry_s)


def resolve_settings() -> Neo4jSettings:
    """The server to use: the environment's, else the running local launcher's."""
    from_env = Neo4jSettings.from_env()
    if from_env is not None:
        return from_env
    from identigraph.graph import local_neo4j

    local = local_neo4j.running_settings()
    if local is not None:
        return local
    raise Neo4jNotConfigured(
        "No Neo4j server is configured: set NEO4J_URI, NEO4J_USER and NEO4J_PASSWORD, "
        "start one with `docker compose up -d` (then NEO4J_URI=bolt://localhost:7687), "
        "or start the local launcher with `make neo4j-start`."
    )


def server_version(driver: neo4j.Driver) -> tuple[str, str]:
    """(version, edition) as reported by ``dbms.components()``."""
    records, _, _ = driver.execute_query(
        "CALL dbms.components() YIELD name, versions, edition "
        "WHERE name = $name RETURN versions[0] AS version, edition",
        name="Neo4j Kernel",
        routing_=neo4j.RoutingControl.READ,
    )
    return records[0]["version"], records[0]["edition"]


def one_line(text) -> str:
    """``text`` with its line breaks and runs of spaces folded: the driver's messages span
    lines, and an error is one line of output."""
    return " ".join(str(text).split())


def explain_neo4j_error(error: BaseException, settings: Neo4jSettings | None = None) -> str:
    """One line saying why Neo4j could not be used or did not finish the work, and what to do.
    The password is never part of it, and the driver's multi-line messages are folded."""
    where = f"Neo4j at {settings.uri}" if settings else "Neo4j"
    detail = one_line(error)
    if settings is not None and settings.password:
        detail = detail.replace(settings.password, "***")
    if isinstance(error, neo4j.exceptions.AuthError):
        user = f" user {settings.user!r}" if settings else ""
        return (f"{where} refused{user}: wrong user name or password. Set NEO4J_USER and NEO4J_PASSWORD to the "
                "server's credentials (the local launcher's are in .neo4j/password).")
    if isinstance(error, (neo4j.exceptions.ServiceUnavailable, neo4j.exceptions.SessionExpired)):
        if "connection refused" in detail.lower():
            return (f"{where}: nothing is listening there (connection refused). Start the server "
                    "(`identigraph neo4j start`, or `docker compose up -d`) or fix the port in NEO4J_URI.")
        if "failed to dns resolve" in detail.lower() or "name or service not known" in detail.lower():
            host = f" {urlsplit(settings.uri).hostname!r}" if settings else ""
            return f"{where}: the host{host} cannot be resolved; check the host name in NEO4J_URI / --neo4j-uri."
        return (f"{where} stopped answering: {detail}. Check that the server runs (`identigraph neo4j status`), "
                "then run the same command again: every write is a MERGE or SET, so a rerun completes it.")
    if isinstance(error, neo4j.exceptions.TransientError):
        return (f"{where} kept refusing the work with a transient error after the driver's retries with back-off "
                f"(IDENTIGRAPH_NEO4J_RETRY_S, 30 s unless set): {error.code}: {one_line(error.message)}. Another "
                "transaction holds the locks or the server is overloaded; run the same command again once it is free.")
    if isinstance(error, neo4j.exceptions.Neo4jError):
        return f"{where} refused the work: {error.code}: {one_line(error.message)}"
    return f"cannot use {where}: {type(error).__name__}: {detail}"


def run_counting(tx: neo4j.ManagedTransaction, statement: str, rows: list[dict]) -> int:
    """A write transaction's work: ``statement`` over ``$rows``, returning its ``n``."""
    return int(tx.run(statement, rows=rows).single(strict=True)["n"])
