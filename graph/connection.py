"""Where the Neo4j server is and how to log in, resolved from the environment.

Order: ``NEO4J_URI`` (+ ``NEO4J_USER``, ``NEO4J_PASSWORD``, ``NEO4J_DATABASE``) when set;
otherwise the local launcher's server (``identigraph neo4j start``) when it is running.
The password never appears in ``repr`` or in error messages.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import neo4j


class Neo4jNotConfigured(RuntimeError):
    """No server was named in the environment and the local launcher is not running."""


@dataclass(frozen=True)
class Neo4jSettings:
    uri: str
    user: str = "neo4j"
    password: str = field(default="", repr=False)
    database: str = "neo4j"

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
            uri=uri,
            user=env.get("NEO4J_USER", "neo4j") or "neo4j",
            password=password,
            database=env.get("NEO4J_DATABASE", "neo4j") or "neo4j",
        )

    def driver(self) -> neo4j.Driver:
        return neo4j.GraphDatabase.driver(self.uri, auth=(self.user, self.password))


def resolve_settings() -> Neo4jSettings:
    """The server to use: the environment's, else the running local launcher's."""
    from_env = Neo4jSettings.from_env()
    if from_env is not None:
        return from_env
    from graph import local_neo4j

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
