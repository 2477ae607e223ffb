"""How a command fails: one line on stderr saying what was wrong and what to do, and exit
status 1; never a traceback for a user's mistake. Commands raise; ``one_line`` (called once,
by the app) decides what a user sees."""
from __future__ import annotations

GNN_MODULES = ("torch", "torch_geometric")
GNN_INSTALL = 'pip install "identigraph[gnn]"'


class CommandError(Exception):
    """A command's own verdict on its options or inputs, already in words."""


def _plain(error: BaseException) -> str:
    text = str(error)
    # KeyError quotes its message; a lookup that failed reads better without them.
    return text.strip("'\"") if isinstance(error, KeyError) else text


def one_line(error: BaseException) -> str | None:
    """The message for an error a user caused or can fix, else None (a bug: let it raise)."""
    from identigraph.graph.connection import Neo4jNotConfigured
    from identigraph.graph.load import LoadInterrupted
    from identigraph.graph.local_neo4j import LocalNeo4jError

    if isinstance(error, ModuleNotFoundError) and (error.name or "").split(".")[0] in GNN_MODULES:
        return (f"this command trains or applies a GNN, which needs PyTorch and PyTorch Geometric "
                f"({error.name} is not installed): {GNN_INSTALL}")
    if type(error).__module__.startswith("neo4j."):
        from identigraph.graph.connection import explain_neo4j_error

        return explain_neo4j_error(error)
    if isinstance(error, (CommandError, ValueError, FileNotFoundError, LookupError, Neo4jNotConfigured,
                          LocalNeo4jError, LoadInterrupted)):
        return _plain(error)
    return None
