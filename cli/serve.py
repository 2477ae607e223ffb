"""``identigraph serve`` and ``identigraph api-key add``: the HTTP API over a resolved state
(docs/api.md), and the keys it accepts."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from identigraph.cli.output import console

KeysOption = Annotated[Path | None, typer.Option(
    "--keys", envvar="IDENTIGRAPH_API_KEYS_FILE", show_default=False,
    help="The API keys file (hashes and scopes; `identigraph api-key add` writes it).")]


def serve(
    resolved: Annotated[Path, typer.Argument(help="The --out folder of `identigraph resolve`.")],
    tables: Annotated[Path | None, typer.Option(help="Graph tables (`graph build`, then `score`, `segment`, "
                                                     "`embed`): risk, segments, similar customers.")] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8080,
    keys: KeysOption = None,
    match_processes: Annotated[int, typer.Option(
        min=0, max=16, help="Processes that match (forks of the server once loaded, sharing its memory), so "
                            "that matching and the HTTP work run on several cores; 0 matches in the server.")] = 2,
) -> None:
    """Serve customers, risk and similar customers over HTTP (OpenAPI docs at /docs); stops
    cleanly on SIGTERM or Ctrl-C, finishing the requests in flight."""
    import gc

    import uvicorn

    from identigraph.serve.app import create_app
    from identigraph.serve.audit import API_AUDIT_FILE, ApiAudit
    from identigraph.serve.keys import KeyRing
    from identigraph.serve.match_process import start_match_processes
    from identigraph.serve.state import ServedState
    from identigraph.serve.writes import RecordWriter

    ring = KeyRing.load(keys)
    with console.status(f"loading {resolved}" + (f" and {tables}" if tables else "")):
        state = ServedState.load(resolved, tables)
        # Records written through the API since the run, replayed from their log.
        writer = RecordWriter(state) if state.matcher is not None else None
    # The loaded state is millions of long-lived objects: left to the collector, each full
    # collection walks them all and stalls every request in flight for tens of milliseconds.
    gc.collect()
    gc.freeze()
    # Forked now: after loading (it shares the loaded pages), before any thread or socket.
    matchers = start_match_processes(state.matcher, match_processes) if state.matcher is not None else []
    if state.matcher is not None:  # for writes (and matching, without match processes); after the forks
        state.matcher.build_value_codes()
    audit = ApiAudit(resolved / API_AUDIT_FILE)
    replayed = f"{writer.replayed:,} written record(s) replayed from {writer.log.path}; " if writer else ""
    replayed += f"matching on processes {', '.join(str(m.pid) for m in matchers)}; " if matchers else ""
    console.print(f"{state.customers:,} customers loaded in {state.seconds:.1f}s; {replayed}{len(ring)} API key(s); "
                  f"serving http://{host}:{port} (OpenAPI docs at /docs), audit log {audit.path}")
    try:
        uvicorn.run(create_app(state, ring, audit, writer, match_processes=matchers), host=host, port=port,
                    log_level="warning", timeout_graceful_shutdown=30)
    finally:
        for matcher in matchers:
            matcher.stop()  # already stopped where the app's shutdown ran
        audit.close()
        if writer is not None:
            writer.close()


def api_key_add(
    name: Annotated[str, typer.Argument(help="Who holds the key (it names the key in the audit log).")],
    scopes: Annotated[str, typer.Option(help="Comma-separated: read, write, risk, admin.")],
    keys: Annotated[Path, typer.Option("--keys", envvar="IDENTIGRAPH_API_KEYS_FILE",
                                       help="The keys file to add it to (created when missing).")],
) -> None:
    """Make a new API key: printed once, only its SHA-256 hash is stored."""
    from identigraph.serve.keys import add_key

    token = add_key(keys, name, [s.strip() for s in scopes.split(",") if s.strip()])
    console.print(f"key {name!r} ({scopes}) added to {keys}; it is shown this once:")
    print(token)
