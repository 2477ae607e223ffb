"""How a command fails: one line on stderr saying what was wrong and what to do, and exit
status 1; never a traceback for a user's mistake. Commands raise; ``one_line`` (called once,
by the app) decides what a user sees."""
from __future__ import annotations

GNN_INSTALL = 'pip install "identigraph[gnn]"'
SERVE_INSTALL = 'pip install "identigraph[serve]"'
# A missing module of an extra -> what it is for and the line that installs it.
EXTRAS = {"torch": ("trains or applies a GNN, which needs PyTorch and PyTorch Geometric", GNN_INSTALL),
          "torch_geometric": ("trains or applies a GNN, which needs PyTorch and PyTorch Geometric", GNN_INSTALL),
          "fastapi": ("serves HTTP, which needs FastAPI and uvicorn", SERVE_INSTALL),
          "uvicorn": ("serves HTTP, which needs FastAPI and uvicorn", SERVE_INSTALL),
          "starlette": ("serves HTTP, which needs FastAPI and uvicorn", SERVE_INSTALL)}


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

    name = (error.name or "") if isinstance(error, ModuleNotFoundError) else ""
    if name.split(".")[0] in EXTRAS:
        needs, install = EXTRAS[name.split(".")[0]]
        return f"this command {needs} ({name} is not installed): {install}"
    if type(error).__module__.startswith("neo4j."):
        from identigraph.graph.connection import explain_neo4j_error

        return explain_neo4j_error(error)
    if isinstance(error, IndexError):  # a lookup by position is the code's, never the user's
        return None
    if isinstance(error, (CommandError, ValueError, FileNotFoundError, LookupError, Neo4jNotConfigured,
                          LocalNeo4jError, LoadInterrupted)):
        return _plain(error)
    return None
