"""The FastAPI application: ``create_app(state, keys, audit, writer)``. Every call but the health
checks needs an API key (``Authorization: Bearer <key>`` or ``X-API-Key``) with the scope
its route names; every call, refused ones too, is a line of the audit log.

No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations, and
the scope checks they name are local to ``create_app``."""

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from identigraph.resolution.ingest import MAX_VALUES_PER_TYPE, TypedValue
from identigraph.resolution.matching import MatchInputError, MatchQuery, MatchResult
from identigraph.serve.audit import ApiAudit
from identigraph.serve.batching import Batcher
from identigraph.serve.keys import ApiKey, KeyRing
from identigraph.serve.match_process import MatchProcess
from identigraph.serve.state import ServedState
from identigraph.serve.writes import RecordWriter, WriteRefused

MAX_BODY_BYTES = 64 * 1024
# Ids as the artifacts write them: customer ids E + hex, sources and record ids of the inputs.
ID_PATTERN = r"^[A-Za-z0-9_.:@\-]{1,128}$"
CustomerId = Annotated[str, Path(pattern=ID_PATTERN, description="A customer id (entity_id), E + 16 hex.")]
ItemId = Annotated[str, Path(pattern=ID_PATTERN)]


class SourceRecord(BaseModel):
    source: str
    record_id: str


class Risk(BaseModel):
    customer_id: str
    risk_score: float | None = None
    risk_rank: int | None = None
    risk_band: str | None = None
    score_kind: str | None = None
    reason_codes: list[str] = []
    risk_reasons: list[str] = []
    segment_id: str | None = None


class Customer(BaseModel):
    customer_id: str
    golden: dict[str, Any]
    records: list[SourceRecord]
    segment: dict[str, Any] | None = None
    risk: Risk | None = None


class Neighbour(BaseModel):
    customer_id: str
    similarity: float


class Similar(BaseModel):
    customer_id: str
    k: int
    neighbours: list[Neighbour]


class MatchRequest(BaseModel):
    """One record: ``source``, optionally ``record_id``, and its values named by semantic type
    (``first_name``, ``last_name``, ``date_of_birth``, ``email``, ``phone``, ``street_address``,
    ``city``, ``postcode`` ...: the types of linkage.toml)."""

    model_config = ConfigDict(extra="allow")
    source: str = Field(pattern=ID_PATTERN)
    record_id: str | None = Field(default=None, pattern=ID_PATTERN)


class PairEvidenceOut(BaseModel):
    source: str
    record_id: str
    match_weight: float
    match_probability: float
    field_weights: dict[str, float]


class CandidateOut(BaseModel):
    customer_id: str
    match_probability: float
    match_weight: float
    best_record: PairEvidenceOut
    records_compared: int


class MatchResponse(BaseModel):
    would_join: str | None
    match_threshold: float
    records_compared: int
    candidates: list[CandidateOut]


class LineageEvent(BaseModel):
    event: str  # "merge" or "split"
    old_ids: list[str]
    new_id: str
    evidence: str


class RecordWritten(BaseModel):
    customer_id: str
    created: bool  # a new record (else it replaced the one with its source and id)
    new_customer: bool
    match_probability: float | None  # the best match it joined, null for a new customer
    events: list[LineageEvent]
    seq: int  # its place in the record log


class Erased(BaseModel):
    request_id: str
    customer_id: str
    records_erased: int
    artifacts: list[str]


class LimitAndAudit:
    """Refuses bodies over the limit before they are read (413; 411 without a length), and
    writes every call but the health checks to the audit log. Plain ASGI rather than
    ``@app.middleware``: that wraps each call in a task and a stream, a good share of a
    request's cost at hundreds a second."""

    def __init__(self, app: ASGIApp, audit: ApiAudit, max_body_bytes: int):
        self.app, self.audit, self.max_body_bytes = app, audit, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        status = 500
        audited = scope["path"] in ("/healthz", "/readyz")

        def note() -> None:
            nonlocal audited
            if not audited:
                audited = True
                self.audit.record(scope.get("state", {}).get("key_name"), scope["method"], scope["path"], status,
                                  (time.perf_counter() - started) * 1000)

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                # Logged before the response's last bytes leave: a client that has its answer
                # finds the call in the audit log.
                note()
            await send(message)

        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            await JSONResponse({"detail": f"the body is over {self.max_body_bytes} bytes"},
                               status_code=413)(scope, receive, send_and_note)
        elif length is None and b"transfer-encoding" in headers:
            # A chunked body has no length to check before it is read: its sender must say it.
            await JSONResponse({"detail": "send the body with a Content-Length"},
                               status_code=411)(scope, receive, send_and_note)
        else:
            await self.app(scope, receive, send_and_note)
        note()  # a call that ended without a response body


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("x-api-key")


def create_app(state: ServedState, keys: KeyRing, audit: ApiAudit, writer: RecordWriter | None = None,
               max_body_bytes: int = MAX_BODY_BYTES, match_processes: Sequence[MatchProcess] = ()) -> FastAPI:
    """``match_processes``: forked copies of the matcher that answer /v1/match, each taking
    the requests waiting whenever it is free (serve.match_process); without one, or once one
    is gone, the server matches itself."""
    # Requests waiting together are matched in one call (serve.batching): same answers, a
    # fraction of the cost each under load.
    def match_locked(queries: list[MatchQuery], process: MatchProcess | None = None) -> list[MatchResult]:
        assert state.matcher is not None
        if process is not None:
            with state.lock:  # a burst of writes is linked whole before a match sees it
                sent = process.send(queries)
            answers = process.receive() if sent else None
            if answers is not None:
                return answers
        with state.lock:
            return state.matcher.match_many(queries)

    answerers: list[Callable[[list[MatchQuery]], list[MatchResult]]] = (
        [partial(match_locked, process=process) for process in match_processes] or [match_locked])
    matching = Batcher(answerers, name="match") if state.matcher is not None else None
    # Writes likewise, and on their own thread: linked in arrival order, fsynced per burst.
    writing = Batcher(writer.write_many, name="write") if writer is not None else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        for batcher in (matching, writing):
            if batcher is not None:
                batcher.stop()
        for process in match_processes:
            process.stop()

    app = FastAPI(title="identigraph", version="1", summary="Customers, risk and similar customers of a "
                  "resolved identity graph.", docs_url="/docs", openapi_url="/openapi.json", lifespan=lifespan)
    erasing = threading.Lock()  # one erasure at a time: each rewrites the artifacts

    def requires(*scopes: str) -> Callable[[Request], Awaitable[ApiKey]]:
        # async, though it awaits nothing: FastAPI runs a plain function dependency on a
        # worker thread, a hand-off that cost more than the check itself at hundreds a second.
        async def check(request: Request) -> ApiKey:
            key = keys.authenticate(_token(request))
            if key is None:
                raise HTTPException(401, "an API key is needed: Authorization: Bearer <key>",
                                    headers={"WWW-Authenticate": "Bearer"})
            request.state.key_name = key.name
            if not any(key.allows(scope) for scope in scopes):
                raise HTTPException(403, f"key {key.name!r} lacks the scope this needs: {' or '.join(scopes)}")
            return key
        return check

    app.add_middleware(LimitAndAudit, audit=audit, max_body_bytes=max_body_bytes)

    def known(customer_id: str) -> str:
        if not state.has(customer_id):
            if customer_id in state.merged_into:
                raise HTTPException(404, f"customer {customer_id!r} was merged into {state.merged_into[customer_id]!r}")
            raise HTTPException(404, f"no customer {customer_id!r}")
        return customer_id

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> dict[str, Any]:
        return {"ready": writer is None or writer.failed is None, "customers": state.customers,
                "matching": state.matcher is not None,
                "match_process_ids": [process.pid for process in match_processes if process.alive],
                "writing": writer is not None,
                "records_written": writer.seq if writer is not None else 0,
                "writes_stopped": writer.failed if writer is not None else None,
                "risk": state.risk is not None,
                "embeddings": state.unit_vectors is not None, "loaded_in_seconds": state.seconds}

    def risk_of(customer_id: str) -> Risk | None:
        risk = state.risk_of(customer_id)
        segment = state.segment_of(customer_id)
        if risk is None:
            return None
        return Risk(customer_id=customer_id, segment_id=segment["segment_id"] if segment else None,
                    **{k: v for k, v in risk.items() if v is not None})

    @app.get("/v1/customers/{customer_id}", response_model=Customer)
    def customer(customer_id: CustomerId, key: Annotated[ApiKey, Depends(requires("read"))]) -> Customer:
        known(customer_id)
        with state.lock:
            golden = state.golden_record(customer_id)
        records = [SourceRecord(source=s, record_id=r) for s, r in state.records_of.get(customer_id, [])]
        return Customer(customer_id=customer_id, golden=golden, records=records,
                        segment=state.segment_of(customer_id), risk=risk_of(customer_id))

    @app.get("/v1/customers/{customer_id}/risk", response_model=Risk)
    def risk(customer_id: CustomerId, key: Annotated[ApiKey, Depends(requires("risk", "read"))]) -> Risk:
        known(customer_id)
        found = risk_of(customer_id)
        if found is None:
            raise HTTPException(404, f"no risk score for {customer_id!r}: serve with --tables after "
                                     "`identigraph score TABLES`")
        return found

    @app.get("/v1/customers/{customer_id}/similar", response_model=Similar)
    def similar(customer_id: CustomerId, key: Annotated[ApiKey, Depends(requires("risk", "read"))],
                k: Annotated[int, Query(ge=1, le=100)] = 10) -> Similar:
        known(customer_id)
        found = state.similar(customer_id, k)
        if found is None:
            raise HTTPException(404, f"no embedding for {customer_id!r}: serve with --tables after "
                                     "`identigraph embed TABLES`")
        return Similar(customer_id=customer_id, k=k,
                       neighbours=[Neighbour(customer_id=c, similarity=s) for c, s in found])

    def query_of(request: MatchRequest, record_id: str | None) -> MatchQuery:
        """The request as a match query, its fields checked (422 naming the field)."""
        if state.matcher is None:
            raise HTTPException(503, "matching is not loaded: the served folder lacks records.parquet or model.json")
        fields: dict[str, TypedValue] = {}
        for name, value in (request.model_extra or {}).items():
            values = value if isinstance(value, list) else [value]
            if len(values) > MAX_VALUES_PER_TYPE or any(
                    v is not None and not isinstance(v, (str, int, float)) for v in values):
                raise HTTPException(422, [{"loc": ["body", name], "type": "string_type",
                                           "msg": f"a field's value is text, or a list of at most "
                                                  f"{MAX_VALUES_PER_TYPE} texts (a source's columns of one type)"}])
            if any(v is not None and len(str(v)) > 500 for v in values):
                raise HTTPException(422, [{"loc": ["body", name], "msg": "at most 500 characters",
                                           "type": "string_too_long"}])
            if name not in state.matcher.types:
                raise HTTPException(422, [{"loc": ["body", name], "type": "unknown_field",
                                           "msg": f"not a semantic type; use {', '.join(sorted(state.matcher.types))}"}])
            if any(v is not None for v in values):  # a list keeps its places: the source's columns in order
                fields[name] = [None if v is None else str(v) for v in values] if isinstance(value, list) else str(value)
        query = MatchQuery(request.source, fields, record_id)
        try:
            state.matcher.check(query)
        except MatchInputError as error:
            raise HTTPException(422, [{"loc": ["body"], "msg": str(error), "type": "value_error"}]) from error
        return query

    @app.post("/v1/match", response_model=MatchResponse)
    async def match(request: MatchRequest, key: Annotated[ApiKey, Depends(requires("read"))],
                    limit: Annotated[int, Query(ge=1, le=100)] = 10) -> JSONResponse:
        """The customers the record would match, best first, with each one's best pair:
        probability, weight and the per-field weights; ``would_join`` is the customer it
        joins (at or above the match threshold), null for a new customer."""
        query = query_of(request, request.record_id)
        assert matching is not None  # query_of answered 503 without a matcher
        result = await asyncio.wrap_future(matching.submit(query))
        # MatchResponse's fields, in its order, as plain JSON: building the models and
        # FastAPI validating them again took a fifth of the server's share of a match.
        # test_match_answers_are_match_responses holds the two alike.
        return JSONResponse({
            "would_join": result.would_join, "match_threshold": result.match_threshold,
            "records_compared": result.records_compared,
            "candidates": [{"customer_id": c.customer_id, "match_probability": c.match_probability,
                            "match_weight": c.match_weight,
                            "best_record": {"source": c.best_record.source, "record_id": c.best_record.record_id,
                                            "match_weight": c.best_record.match_weight,
                                            "match_probability": c.best_record.match_probability,
                                            "field_weights": c.best_record.field_weights},
                            "records_compared": c.records_compared}
                           for c in result.candidates[:limit]]})

    @app.post("/v1/records", response_model=RecordWritten)
    async def write_record(request: MatchRequest, key: Annotated[ApiKey, Depends(requires("write"))]) -> RecordWritten:
        """Adds a record, or updates the one with its ``source`` and ``record_id``: linked with
        the run's model, its customer chosen by the incremental id rules (merges and splits
        are returned as lineage events), and on disk before this answers."""
        if request.record_id is None:
            raise HTTPException(422, [{"loc": ["body", "record_id"], "msg": "a written record needs its id "
                                       "in its source", "type": "missing"}])
        if ":" in request.source:
            raise HTTPException(422, [{"loc": ["body", "source"], "msg": "a source name has no ':' (record keys "
                                       "are source:record_id)", "type": "value_error"}])
        query = query_of(request, request.record_id)
        if writing is None:
            raise HTTPException(503, "writing is not loaded: the served folder lacks records.parquet or model.json")
        try:
            outcome = await asyncio.wrap_future(writing.submit(query))
        except OSError as error:
            raise HTTPException(503, str(error)) from error
        if isinstance(outcome, WriteRefused):
            raise HTTPException(409, str(outcome))
        return RecordWritten(customer_id=outcome.customer_id, created=outcome.created,
                             new_customer=outcome.new_customer, match_probability=outcome.match_probability,
                             events=[LineageEvent(**{k: e[k] for k in ("event", "old_ids", "new_id", "evidence")})
                                     for e in outcome.events], seq=outcome.seq)

    def erase(customer_id: str | None, record: str | None) -> Erased:
        """Erases from the artifacts, the graph tables, the record log and what is served;
        the person as the server knows them now (records written and merged since the run
        included)."""
        from dataclasses import replace

        from identigraph.graph.erasure import erase_from_graph_tables
        from identigraph.resolution.erasure import ErasureError, erase_from_resolution, erase_keys

        with erasing:
            try:
                if state.matcher is None:  # nothing written since the run: its artifacts name everyone
                    erasure = erase_from_resolution(state.resolved_dir, customer_id, record)
                else:
                    owner: str | None
                    with state.lock:
                        if customer_id is not None:
                            keys = sorted(f"{s}:{r}" for s, r in state.records_of.get(customer_id, []))
                            owner, scope = customer_id, "customer"
                        else:
                            assert record is not None
                            keys, owner, scope = [record], state.matcher.customer_of(record), "record"
                    if owner is None or not keys:
                        raise ErasureError(f"no record {record!r}: write it as /v1/records/SOURCE/RECORD_ID")
                    erasure = erase_keys(state.resolved_dir, owner, keys, scope)
            except ErasureError as error:
                raise HTTPException(404, str(error)) from error
            written = list(erasure.artifacts)
            if state.tables_dir is not None:
                for artifact_customer, its_scope in erasure.artifact_customers.items():
                    written += erase_from_graph_tables(state.tables_dir, state.resolved_dir,
                                                       replace(erasure, customer_id=artifact_customer,
                                                               scope=its_scope))
            if writer is not None and writer.forget(erasure.record_keys, erasure.request_id):
                written.append(str(writer.log.path))
            state.forget(erasure)
        return Erased(request_id=erasure.request_id, customer_id=erasure.customer_id,
                      records_erased=len(erasure.record_keys), artifacts=sorted(set(written)))

    @app.delete("/v1/customers/{customer_id}", response_model=Erased)
    def delete_customer(customer_id: CustomerId, key: Annotated[ApiKey, Depends(requires("admin"))]) -> Erased:
        known(customer_id)
        return erase(customer_id, None)

    @app.delete("/v1/records/{source}/{record_id}", response_model=Erased)
    def delete_record(source: ItemId, record_id: ItemId, key: Annotated[ApiKey, Depends(requires("write"))]) -> Erased:
        return erase(None, f"{source}:{record_id}")

    return app
