"""`identigraph serve`, started as a real server and spoken to over HTTP."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from identigraph.serve.keys import KeyRing, add_key

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, base: str):
        self.base = base

    def call(self, method: str, path: str, key: str | None = None, body: bytes | None = None,
             headers: dict | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(self.base + path, method=method, data=body, headers=headers or {})
        if key:
            request.add_header("Authorization", f"Bearer {key}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


def start_serve(resolved: Path, tables: Path | None, keys_file: Path) -> tuple[subprocess.Popen, Client]:
    """`identigraph serve` in its own process, answering /healthz."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "identigraph.cli.app", "serve", str(resolved),
                                *(["--tables", str(tables)] if tables else []), "--port", str(port),
                                "--keys", str(keys_file)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    client = Client(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 120
    while True:
        try:
            if client.call("GET", "/healthz")[0] == 200:
                return process, client
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the server did not start: {process.stdout.read() if process.stdout else ''}")
        time.sleep(0.3)


def process_ended(pid: int, timeout: float) -> bool:
    """The process is gone (or a zombie no one has reaped yet) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except (FileNotFoundError, ProcessLookupError):
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def served(graph_tables, embedded, tmp_path_factory):
    """A copy of the small resolved state and its tables (risk, segments, embeddings), served
    by `identigraph serve` in its own process; yields (client, keys, folders, process)."""
    from identigraph.scoring.pipeline import score_customers
    from identigraph.scoring.segments import segment_customers

    work = tmp_path_factory.mktemp("serve")
    resolved, tables = work / "resolved", work / "tables"
    shutil.copytree(graph_tables.parent / "resolved", resolved)
    shutil.copytree(graph_tables, tables)
    shutil.copytree(embedded, tables / "embeddings")
    embeddings = tables / "embeddings" / "embeddings.parquet"
    score_customers(tables, tables, embeddings)
    segment_customers(tables, tables, embeddings, risk_path=tables / "risk.parquet")
    keys_file = work / "keys.json"
    keys = {scope: add_key(keys_file, f"{scope}-holder", [scope]) for scope in ("read", "write", "risk", "admin")}
    process, client = start_serve(resolved, tables, keys_file)
    yield client, keys, resolved, tables, process
    if process.poll() is None:
        process.kill()
        process.wait()


def _a_customer_with_records(resolved: Path, at_least: int) -> tuple[str, pd.DataFrame]:
    entities = pd.read_parquet(resolved / "entities.parquet")
    sizes = entities.groupby("entity_id").size()
    customer = sorted(sizes[sizes >= at_least].index)[0]
    return customer, entities[entities["entity_id"] == customer]


def test_health_needs_no_key_and_says_what_is_loaded(served):
    client, keys, resolved, tables, _ = served
    assert client.call("GET", "/healthz") == (200, {"status": "ok"})
    status, ready = client.call("GET", "/readyz")
    assert status == 200 and ready["ready"] and ready["risk"] and ready["embeddings"]
    assert ready["matching"] and len(ready["match_process_ids"]) == 2
    # Two processes on two cores (or one): each on a core of its own; with more, left to the kernel.
    cores = sorted(os.sched_getaffinity(0))
    theirs = [os.sched_getaffinity(pid) for pid in ready["match_process_ids"]]
    if 1 < len(cores) <= 2:
        assert sorted(core for one in theirs for core in one) == cores
    else:
        assert all(one == set(cores) for one in theirs)
    assert ready["customers"] == pd.read_parquet(resolved / "golden.parquet")["entity_id"].nunique()


def test_a_customer_needs_a_key_with_the_read_scope(served):
    client, keys, resolved, tables, _ = served
    customer, _ = _a_customer_with_records(resolved, 2)
    assert client.call("GET", f"/v1/customers/{customer}")[0] == 401
    assert client.call("GET", f"/v1/customers/{customer}", key="ig_not-a-key")[0] == 401
    assert client.call("GET", f"/v1/customers/{customer}", key=keys["risk"])[0] == 403
    assert client.call("GET", f"/v1/customers/{customer}", key=keys["write"])[0] == 403
    assert client.call("GET", f"/v1/customers/{customer}", key=keys["admin"])[0] == 200


def test_a_customer_is_its_golden_record_source_records_segment_and_risk(served):
    client, keys, resolved, tables, _ = served
    customer, records = _a_customer_with_records(resolved, 3)
    status, body = client.call("GET", f"/v1/customers/{customer}", key=keys["read"])
    assert status == 200
    golden = pd.read_parquet(resolved / "golden.parquet").set_index("entity_id").loc[customer]
    assert body["golden"]["last_name"] == golden["last_name"]
    assert body["golden"]["record_count"] == len(records)
    assert sorted((r["source"], r["record_id"]) for r in body["records"]) == \
        sorted(zip(records["source"], records["record_id"].astype(str)))
    risk = pd.read_parquet(tables / "risk.parquet").set_index("customer_id").loc[customer]
    assert body["risk"]["risk_score"] == pytest.approx(float(risk["risk_score"]))
    assert body["risk"]["risk_reasons"] == list(risk["risk_reasons"])
    segment = pd.read_parquet(tables / "segments.parquet").set_index("customer_id").loc[customer]
    assert body["segment"] == {"segment_id": segment["segment_id"], "segment": segment["segment"]}


def test_the_risk_key_sees_ids_scores_and_reasons_never_pii(served):
    client, keys, resolved, tables, _ = served
    risky = pd.read_parquet(tables / "risk.parquet").sort_values("risk_rank").iloc[0]
    status, body = client.call("GET", f"/v1/customers/{risky['customer_id']}/risk", key=keys["risk"])
    assert status == 200
    assert set(body) <= {"customer_id", "risk_score", "risk_rank", "risk_band", "score_kind", "reason_codes",
                         "risk_reasons", "segment_id"}
    assert body["risk_rank"] == 1 and body["risk_band"] == risky["risk_band"]
    golden = pd.read_parquet(resolved / "golden.parquet").set_index("entity_id").loc[risky["customer_id"]]
    text = json.dumps(body).lower()
    for attribute in ("first_name", "last_name", "email", "phone", "street", "date_of_birth"):
        if isinstance(golden.get(attribute), str) and len(golden[attribute]) > 3:
            assert golden[attribute].lower() not in text


def test_similar_customers_are_the_nearest_by_embedding(served):
    client, keys, resolved, tables, _ = served
    customer, _ = _a_customer_with_records(resolved, 1)
    status, body = client.call("GET", f"/v1/customers/{customer}/similar?k=5", key=keys["risk"])
    assert status == 200 and len(body["neighbours"]) == 5
    embeddings = pd.read_parquet(tables / "embeddings" / "embeddings.parquet")
    vectors = embeddings[embeddings["node_type"] == "customer"].set_index("node_id")["embedding"]
    import numpy as np

    matrix = np.stack(vectors.to_numpy())
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    cosine = pd.Series(unit @ unit[vectors.index.get_loc(customer)], index=vectors.index).drop(customer)
    expected = cosine.sort_values(ascending=False).index[:5].tolist()
    assert [n["customer_id"] for n in body["neighbours"]] == expected
    similarities = [n["similarity"] for n in body["neighbours"]]
    assert similarities == sorted(similarities, reverse=True)


def test_bad_requests_are_refused_with_the_field_named(served):
    client, keys, resolved, tables, _ = served
    customer, _ = _a_customer_with_records(resolved, 1)
    status, body = client.call("GET", f"/v1/customers/{customer}/similar?k=0", key=keys["read"])
    assert status == 422 and body["detail"][0]["loc"] == ["query", "k"]
    assert client.call("GET", f"/v1/customers/{customer}/similar?k=101", key=keys["read"])[0] == 422
    assert client.call("GET", "/v1/customers/E00000000deadbeef", key=keys["read"])[0] == 404
    status, body = client.call("GET", "/v1/customers/%3Cscript%3E", key=keys["read"])
    assert status == 422 and body["detail"][0]["loc"] == ["path", "customer_id"]
    status, body = client.call("POST", "/v1/customers", key=keys["read"], body=b"x" * 70_000,
                               headers={"Content-Type": "application/json"})
    assert status == 413
    # A chunked body, whose size is not known before it is read, is refused too.
    import http.client

    connection = http.client.HTTPConnection(client.base.removeprefix("http://"), timeout=30)
    connection.request("POST", "/v1/match", body=iter([b'{"source": "crm", ', b'"first_name": "Ann"}']),
                       headers={"Authorization": f"Bearer {keys['read']}", "Content-Type": "application/json"},
                       encode_chunked=True)
    assert connection.getresponse().status == 411
    connection.close()


def test_every_call_is_audited_with_who_what_and_outcome_and_no_pii(served):
    client, keys, resolved, tables, _ = served
    customer, _ = _a_customer_with_records(resolved, 2)
    client.call("GET", f"/v1/customers/{customer}", key=keys["read"])
    client.call("GET", f"/v1/customers/{customer}", key=keys["risk"])
    client.call("GET", f"/v1/customers/{customer}")
    lines = [json.loads(line) for line in (resolved / "api_audit.jsonl").read_text().splitlines()]
    mine = [e for e in lines if e["path"] == f"/v1/customers/{customer}"][-3:]
    assert [(e["key"], e["status"]) for e in mine] == [("read-holder", 200), ("risk-holder", 403), (None, 401)]
    golden = pd.read_parquet(resolved / "golden.parquet").set_index("entity_id").loc[customer]
    text = (resolved / "api_audit.jsonl").read_text().lower()
    assert str(golden["last_name"]).lower() not in text and str(golden["email"]).lower() not in text


def test_keys_are_stored_hashed_with_their_scopes(tmp_path):
    path = tmp_path / "keys.json"
    token = add_key(path, "app", ["read", "write"])
    assert token not in path.read_text()
    key = KeyRing.load(path).authenticate(token)
    assert key is not None and key.name == "app" and key.allows("write") and not key.allows("risk")
    assert KeyRing.load(path).authenticate(token + "x") is None
    with pytest.raises(ValueError, match="scopes must be"):
        add_key(path, "other", ["everything"])
    with pytest.raises(ValueError, match="already has a key named"):
        add_key(path, "app", ["read"])


def test_a_record_matched_over_http_joins_the_customer_the_batch_run_gave_it(served, small_dataset):
    """Leave one out: each record, sent as its source's row with its own id left out of the
    candidates, joins the batch run's customer when that customer has other records, and
    no one when the batch left it alone."""
    from identigraph.resolution.config import load_config

    client, keys, resolved, tables, _ = served
    config = load_config(small_dataset / "linkage.toml")
    entities = pd.read_parquet(resolved / "entities.parquet")
    entities["key"] = entities["source"] + ":" + entities["record_id"].astype(str)
    entity_of = dict(zip(entities["key"], entities["entity_id"]))
    size_of = entities.groupby("entity_id").size()
    checked = 0
    for source, filename, reader in (("crm", "crm.csv", pd.read_csv), ("store_loyalty", "store_loyalty.csv", pd.read_csv)):
        source_config = config.for_source(source)
        rows = reader(small_dataset / filename, dtype=str).head(30)
        for row in rows.to_dict("records"):
            record_id = row[source_config.id_column]
            body = {"source": source, "record_id": record_id}
            body |= {kind: row[column] for column, kind in source_config.fields.items()
                     if kind != "ignore" and isinstance(row[column], str)}
            status, answer = client.call("POST", "/v1/match", key=keys["read"], body=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
            assert status == 200, answer
            own = entity_of.get(f"{source}:{record_id}")
            if own is None:  # quarantined in the batch run
                continue
            assert answer["would_join"] == (own if size_of[own] > 1 else None), (body, answer)
            if answer["candidates"]:
                best = answer["candidates"][0]
                assert set(best["best_record"]["field_weights"]) <= {"first_name", "last_name", "dob", "email",
                                                                     "phone", "address", "gender", "identifier"}
            checked += 1
    assert checked >= 50


def test_match_refuses_unknown_fields_and_keys_without_read(served):
    client, keys, resolved, tables, _ = served
    body = json.dumps({"source": "crm", "first_name": "Ann", "favourite_colour": "blue"}).encode()
    status, answer = client.call("POST", "/v1/match", key=keys["read"], body=body,
                                 headers={"Content-Type": "application/json"})
    assert status == 422 and answer["detail"][0]["loc"] == ["body", "favourite_colour"]
    status, answer = client.call("POST", "/v1/match", key=keys["read"], body=b'{"first_name": "Ann"}',
                                 headers={"Content-Type": "application/json"})
    assert status == 422 and answer["detail"][0]["loc"] == ["body", "source"]
    assert client.call("POST", "/v1/match", key=keys["risk"], body=body,
                       headers={"Content-Type": "application/json"})[0] == 403
    assert client.call("POST", "/v1/match", body=body, headers={"Content-Type": "application/json"})[0] == 401


def test_match_answers_are_match_responses(served):
    """/v1/match writes its JSON by hand (for speed): it must be what its documented
    MatchResponse gives, field for field, with ``limit`` honoured."""
    from identigraph.serve.app import MatchResponse

    client, keys, resolved, tables, _ = served
    customer, records = _a_customer_with_records(resolved, 2)
    shown = client.call("GET", f"/v1/customers/{customer}", key=keys["read"])[1]["golden"]
    probe = {"source": "web_accounts", "first_name": shown["first_name"], "last_name": shown["last_name"],
             "date_of_birth": shown["date_of_birth"]}
    for limit in (1, 10):
        status, answer = client.call("POST", f"/v1/match?limit={limit}", key=keys["read"],
                                     body=json.dumps({k: v for k, v in probe.items() if v}).encode(),
                                     headers={"Content-Type": "application/json"})
        assert status == 200 and answer["candidates"] and len(answer["candidates"]) <= limit
        assert MatchResponse.model_validate(answer).model_dump(mode="json") == answer
    schema = client.call("GET", "/openapi.json")[1]
    response = schema["paths"]["/v1/match"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert response == {"$ref": "#/components/schemas/MatchResponse"}


def test_erasing_a_record_needs_write_and_a_customer_admin(served):
    client, keys, resolved, tables, _ = served
    customer, records = _a_customer_with_records(resolved, 2)
    source, record_id = records.iloc[0]["source"], str(records.iloc[0]["record_id"])
    assert client.call("DELETE", f"/v1/records/{source}/{record_id}", key=keys["read"])[0] == 403
    status, body = client.call("DELETE", f"/v1/records/{source}/{record_id}", key=keys["write"])
    assert status == 200 and body["customer_id"] == customer and body["records_erased"] == 1
    forgotten = (resolved / "forgotten.jsonl").read_text()
    assert f"{source}:{record_id}" in forgotten
    assert client.call("DELETE", f"/v1/customers/{customer}", key=keys["write"])[0] == 403
    before = client.call("GET", f"/v1/customers/{customer}", key=keys["read"])[1]["golden"]
    status, body = client.call("DELETE", f"/v1/customers/{customer}", key=keys["admin"])
    assert status == 200 and body["records_erased"] == len(records)
    status, shown = client.call("GET", f"/v1/customers/{customer}", key=keys["read"])
    assert status == 200 and shown["golden"]["last_name"] is None and shown["golden"]["email"] is None
    on_disk = pd.read_parquet(resolved / "golden.parquet").set_index("entity_id").loc[customer]
    assert on_disk["last_name"] is None
    # Matching no longer finds the erased person's records.
    probe = {"source": "web_accounts", "first_name": before["first_name"], "last_name": before["last_name"],
             "email": before["email"], "date_of_birth": before["date_of_birth"]}
    status, found = client.call("POST", "/v1/match", key=keys["read"],
                                body=json.dumps({k: v for k, v in probe.items() if v}).encode(),
                                headers={"Content-Type": "application/json"})
    assert status == 200 and customer not in [c["customer_id"] for c in found["candidates"]]


def test_sigterm_stops_the_server_cleanly(served):
    client, keys, resolved, tables, process = served
    match_processes = client.call("GET", "/readyz")[1]["match_process_ids"]
    process.send_signal(signal.SIGTERM)
    # uvicorn finishes the requests in flight, then ends by the signal it was sent (-15), as
    # a process manager expects.
    assert process.wait(timeout=60) in (0, -signal.SIGTERM)
    assert "Traceback" not in (process.stdout.read() if process.stdout else "")
    assert match_processes and all(process_ended(pid, timeout=5) for pid in match_processes)
