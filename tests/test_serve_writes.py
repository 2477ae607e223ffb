"""`POST /v1/records` against a real `identigraph serve` process: linking, ids, durability
(kill -9), concurrent writers, erasure, and a later batch run that reads what was written."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from identigraph.resolution.config import load_config
from identigraph.resolution.record_log import RECORD_LOG_FILE, read_record_log
from identigraph.serve.keys import add_key
from tests.test_serve import process_ended, start_serve

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def writable(graph_tables, tmp_path):
    """A fresh copy of the small resolved state, its keys, and a way to start a server on it."""
    resolved = tmp_path / "resolved"
    shutil.copytree(graph_tables.parent / "resolved", resolved)
    keys_file = tmp_path / "keys.json"
    keys = {scope: add_key(keys_file, f"{scope}-holder", [scope]) for scope in ("read", "write", "admin")}
    servers = []

    def start():
        process, client = start_serve(resolved, None, keys_file)
        servers.append(process)
        return process, client

    yield resolved, keys, start
    for process in servers:
        if process.poll() is None:
            process.kill()
            process.wait()


def _people(small_dataset: Path, resolved: Path, count: int) -> list[tuple[dict, str, int]]:
    """CRM rows of customers the run found, as write bodies by semantic type (record id
    still theirs), each with its customer and that customer's number of records."""
    config = load_config(small_dataset / "linkage.toml").for_source("crm")
    entities = pd.read_parquet(resolved / "entities.parquet")
    entities["key"] = entities["source"] + ":" + entities["record_id"].astype(str)
    entity_of = dict(zip(entities["key"], entities["entity_id"]))
    size_of = entities.groupby("entity_id").size()
    out = []
    for row in pd.read_csv(small_dataset / "crm.csv", dtype=str).to_dict("records"):
        key = f"crm:{row[config.id_column]}"
        if key not in entity_of:
            continue
        body = {"source": "crm", "record_id": row[config.id_column]}
        body |= {kind: row[column] for column, kind in config.fields.items()
                 if kind != "ignore" and isinstance(row[column], str)}
        out.append((body, entity_of[key], int(size_of[entity_of[key]])))
        if len(out) == count:
            break
    return out


def _write(client, key, body):
    return client.call("POST", "/v1/records", key=key, body=json.dumps(body).encode(), headers=JSON)


def test_a_written_record_joins_its_customer_a_new_person_is_a_new_customer_and_both_are_on_disk(
        writable, small_dataset):
    resolved, keys, start = writable
    _, client = start()
    body, customer, _ = _people(small_dataset, resolved, 1)[0]
    twin = {**body, "source": "web_signup", "record_id": "W-1"}  # the same person, from another channel
    status, written = _write(client, keys["write"], twin)
    assert status == 200, written
    assert written["customer_id"] == customer and written["created"] and not written["new_customer"]
    assert written["match_probability"] >= 0.9
    newcomer = {"source": "web_signup", "record_id": "W-2", "first_name": "Zebedee", "last_name": "Quoxley",
                "email": "zq.1987@example.net", "date_of_birth": "1987-03-14"}
    status, fresh = _write(client, keys["write"], newcomer)
    assert status == 200 and fresh["new_customer"] and fresh["match_probability"] is None
    # A new customer is named as a batch run names it: E + a hash of its smallest record key.
    assert fresh["customer_id"] == "E" + hashlib.blake2b(b"web_signup:W-2", digest_size=8).hexdigest()
    status, shown = client.call("GET", f"/v1/customers/{customer}", key=keys["read"])
    assert status == 200 and {"source": "web_signup", "record_id": "W-1"} in shown["records"]
    assert shown["golden"]["record_count"] == len(shown["records"])
    status, shown = client.call("GET", f"/v1/customers/{fresh['customer_id']}", key=keys["read"])
    assert status == 200 and shown["golden"]["last_name"] == "Quoxley"
    # Acknowledged means on disk: both lines are in the log, checked.
    logged = read_record_log(resolved / RECORD_LOG_FILE)
    assert [(e["record_id"], e["customer_id"]) for e in logged.entries] == [
        ("W-1", customer), ("W-2", fresh["customer_id"])]
    # An update replaces the record: the newcomer's second version is the same record.
    status, again = _write(client, keys["write"], {**newcomer, "email": "zq.new@example.net"})
    assert status == 200 and not again["created"] and again["customer_id"] == fresh["customer_id"]
    status, matched = client.call("POST", "/v1/match", key=keys["read"], headers=JSON, body=json.dumps(
        {"source": "crm", "first_name": "Zebedee", "last_name": "Quoxley", "email": "zq.new@example.net"}).encode())
    assert status == 200 and matched["candidates"][0]["customer_id"] == fresh["customer_id"]


def test_writes_need_the_write_scope_an_id_and_known_fields(writable):
    resolved, keys, start = writable
    _, client = start()
    body = {"source": "web_signup", "record_id": "W-9", "first_name": "Ann"}
    assert _write(client, keys["read"], body)[0] == 403
    assert _write(client, None, body)[0] == 401
    status, answer = _write(client, keys["write"], {"source": "web_signup", "first_name": "Ann"})
    assert status == 422 and answer["detail"][0]["loc"] == ["body", "record_id"]
    status, answer = _write(client, keys["write"], {**body, "shoe_size": "9"})
    assert status == 422 and answer["detail"][0]["loc"] == ["body", "shoe_size"]
    assert not (resolved / RECORD_LOG_FILE).exists() or not read_record_log(resolved / RECORD_LOG_FILE).entries


def test_parallel_writers_lose_and_duplicate_nothing(writable, small_dataset):
    """Eight clients write 240 records at once: 120 people, each written twice under two ids
    by two different clients. Every record is acknowledged once, logged once, held by one
    customer, and each person's two records end in the same customer."""
    resolved, keys, start = writable
    _, client = start()
    people = _people(small_dataset, resolved, 120)
    bodies = []
    for i, (body, _, _) in enumerate(people):
        for copy in ("a", "b"):
            bodies.append({**body, "source": "app_import", "record_id": f"P{i}-{copy}"})
    # Client k writes bodies k, k+8, ...: a person's two copies go to different clients.
    answers: dict[str, dict] = {}
    lock = threading.Lock()

    def writer(k: int) -> None:
        for body in bodies[k::8]:
            status, answer = _write(client, keys["write"], body)
            assert status == 200, answer
            with lock:
                answers[body["record_id"]] = answer

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == len(bodies)
    logged = read_record_log(resolved / RECORD_LOG_FILE)
    assert sorted(e["seq"] for e in logged.entries) == list(range(1, len(bodies) + 1))
    assert sorted(e["record_id"] for e in logged.entries) == sorted(answers)
    customer_of = logged.customer_of()
    for i in range(len(people)):
        assert customer_of[f"app_import:P{i}-a"] == customer_of[f"app_import:P{i}-b"]
    held: list[str] = []
    for customer in set(customer_of.values()):
        status, shown = client.call("GET", f"/v1/customers/{customer}", key=keys["read"])
        assert status == 200
        held += [r["record_id"] for r in shown["records"] if r["source"] == "app_import"]
    assert sorted(held) == sorted(answers)  # each record in exactly one customer


def test_kill_9_during_writes_keeps_every_acknowledged_write_and_nothing_half_written(writable, small_dataset):
    resolved, keys, start = writable
    process, client = start()
    people = _people(small_dataset, resolved, 300)
    acknowledged: dict[str, str] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(k: int) -> None:
        for i, (body, _, _) in enumerate(people[k::4]):
            if stop.is_set():
                return
            record_id = f"K{k}-{i}"
            try:
                status, answer = _write(client, keys["write"], {**body, "source": "kiosk", "record_id": record_id})
            except OSError:  # the server was killed under it
                return
            if status == 200:
                with lock:
                    acknowledged[f"kiosk:{record_id}"] = answer["customer_id"]

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with lock:
            if len(acknowledged) >= 60:
                break
        time.sleep(0.005)
    match_processes = client.call("GET", "/readyz")[1]["match_process_ids"]
    assert match_processes
    process.send_signal(signal.SIGKILL)
    process.wait()
    stop.set()
    # The server's match processes end with it: they read its end of their pipe closing.
    assert all(process_ended(pid, timeout=20) for pid in match_processes)
    for thread in threads:
        thread.join()
    assert 60 <= len(acknowledged) < 300
    # A torn last line is what a crash mid-write leaves: add one, as if cut short.
    with open(resolved / RECORD_LOG_FILE, "ab") as handle:
        handle.write(b'{"seq": 99999, "source": "kiosk", "record_id": "torn", "fie')
    _, client = start()
    logged = read_record_log(resolved / RECORD_LOG_FILE)
    assert logged.torn_bytes == 0  # the restart dropped the torn line
    assert (resolved / RECORD_LOG_FILE).read_bytes().endswith(b"\n")
    on_disk = logged.customer_of()
    assert "kiosk:torn" not in on_disk
    for key, customer in acknowledged.items():
        assert on_disk[key] == customer
    status, ready = client.call("GET", "/readyz")
    assert ready["records_written"] == len(logged.entries) >= len(acknowledged)
    for key, customer in list(acknowledged.items())[:20]:
        status, shown = client.call("GET", f"/v1/customers/{customer}", key=keys["read"])
        assert status == 200 and {"source": "kiosk", "record_id": key.split(":", 1)[1]} in shown["records"]


def test_erasing_a_written_record_takes_its_values_out_of_the_log_and_it_cannot_come_back(writable):
    resolved, keys, start = writable
    _, client = start()
    body = {"source": "web_signup", "record_id": "E-1", "first_name": "Philippa", "last_name": "Trengrouse",
            "email": "p.trengrouse@example.org"}
    status, written = _write(client, keys["write"], body)
    assert status == 200
    assert b"trengrouse@example.org" in (resolved / RECORD_LOG_FILE).read_bytes()
    status, erased = client.call("DELETE", "/v1/records/web_signup/E-1", key=keys["write"])
    assert status == 200 and erased["customer_id"] == written["customer_id"]
    assert b"trengrouse" not in (resolved / RECORD_LOG_FILE).read_bytes().lower()
    assert "web_signup:E-1" in (resolved / "forgotten.jsonl").read_text()
    assert _write(client, keys["write"], body)[0] == 409
    status, shown = client.call("GET", f"/v1/customers/{written['customer_id']}", key=keys["read"])
    assert status == 200 and shown["golden"]["email"] is None


def test_a_later_batch_run_reads_the_written_records_and_keeps_the_ids_the_api_gave(
        writable, small_dataset, tmp_path):
    from typer.testing import CliRunner

    from identigraph.cli.app import app

    resolved, keys, start = writable
    process, client = start()
    people = _people(small_dataset, resolved, 40)
    given = {}
    for i, (body, _customer, _) in enumerate(people):
        status, answer = _write(client, keys["write"], {**body, "source": "app_import", "record_id": f"B{i}"})
        assert status == 200
        given[f"app_import:B{i}"] = answer["customer_id"]
    newcomer = {"source": "app_import", "record_id": "B-new", "first_name": "Octavia", "last_name": "Brindlecombe",
                "email": "octavia.b@example.com"}
    status, answer = _write(client, keys["write"], newcomer)
    given["app_import:B-new"] = answer["customer_id"]
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)

    result = CliRunner().invoke(app, ["resolve", "--previous", str(resolved), "--out", str(tmp_path / "next")])
    assert result.exit_code == 0, result.output
    entities = pd.read_parquet(tmp_path / "next" / "entities.parquet")
    entities["key"] = entities["source"] + ":" + entities["record_id"].astype(str)
    batch = dict(zip(entities["key"], entities["entity_id"]))
    assert set(given) <= set(batch)  # every written record is in the run
    same = sum(batch[key] == customer for key, customer in given.items())
    assert same >= 0.95 * len(given)
    assert batch["app_import:B-new"] == given["app_import:B-new"]
    run = json.loads((tmp_path / "next" / "run.json").read_text())
    assert run["stats"][RECORD_LOG_FILE]["resolved"] == len(given)
    # The earlier run's own records are all still there: records in = records out.
    assert len(entities) == len(pd.read_parquet(resolved / "entities.parquet")) + len(given)


def test_a_record_matching_two_customers_merges_them_only_where_the_batch_guard_would():
    """The guard a write's merge passes (clustering.clusters_may_merge): no cannot-link
    between the customers, merge; a pair between them at the distinct-person weight, never;
    one weak pair that the match outweighs, merge."""
    import numpy as np

    from identigraph.resolution.clustering import clusters_may_merge
    from identigraph.resolution.model import DISTINCT_PERSON_WEIGHT

    cannot = 0.05
    assert clusters_may_merge(np.array([0.9, 0.7, 0.99]), 12.0, cannot)
    assert clusters_may_merge(np.array([]), 12.0, cannot)
    distinct = 1 / (1 + 2 ** -DISTINCT_PERSON_WEIGHT)  # the probability at the distinct-person weight
    assert not clusters_may_merge(np.array([0.99, distinct]), 30.0, cannot)
    assert clusters_may_merge(np.array([0.99, 0.01]), 12.0, cannot)  # log-odds -6.6, outweighed by 12
    assert not clusters_may_merge(np.array([0.001, 0.002, 0.001]), 5.0, cannot)  # -10 x 3 against 5


def test_matching_goes_on_in_the_server_when_its_match_processes_die(writable, small_dataset):
    """The match processes answer /v1/match; killed, the server matches on its own, with the
    same answers, and writes made after are matched too."""
    resolved, keys, start = writable
    _, client = start()
    ready = client.call("GET", "/readyz")[1]
    assert len(ready["match_process_ids"]) == 2  # the default
    body, customer, _ = _people(small_dataset, resolved, 1)[0]
    probe = json.dumps({k: v for k, v in body.items() if k != "record_id"}).encode()
    status, before = client.call("POST", "/v1/match", key=keys["read"], headers=JSON, body=probe)
    assert status == 200 and before["would_join"] == customer
    for pid in ready["match_process_ids"]:
        os.kill(pid, signal.SIGKILL)
    assert all(process_ended(pid, timeout=20) for pid in ready["match_process_ids"])
    for _ in range(3):  # one request per process that was lost, and one after
        status, after = client.call("POST", "/v1/match", key=keys["read"], headers=JSON, body=probe)
        assert status == 200 and after == before
    assert client.call("GET", "/readyz")[1]["match_process_ids"] == []
    newcomer = {"source": "kiosk", "record_id": "after-the-processes", "first_name": "Ottoline",
                "last_name": "Pemberthwaite", "email": "o.pemberthwaite@example.org", "date_of_birth": "1979-08-02"}
    status, written = _write(client, keys["write"], newcomer)
    assert status == 200 and written["new_customer"]
    status, found = client.call("POST", "/v1/match", key=keys["read"], headers=JSON, body=json.dumps(
        {k: v for k, v in newcomer.items() if k != "record_id"} | {"source": "crm"}).encode())
    assert status == 200 and found["would_join"] == written["customer_id"]
