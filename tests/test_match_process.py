"""Matching on forked processes (serve.match_process) and one record's blocking keys: the
parts that let `POST /v1/match` answer fast must answer as the server's own matcher does."""
from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from identigraph.resolution.blocking import add_blocking_keys, blocking_key_values
from identigraph.resolution.config import load_config
from identigraph.resolution.encoding import EncodedRecords
from identigraph.resolution.matching import MatchQuery, MatchResult, RecordMatcher
from identigraph.serve.match_process import fork_is_available, start_match_processes


def _summary(results: list[MatchResult]) -> list[tuple]:
    return [(r.would_join, r.records_compared,
             [(c.customer_id, round(c.match_probability, 9), c.best_record.record_id) for c in r.candidates])
            for r in results]


def _queries(small_dataset, count: int) -> list[MatchQuery]:
    config = load_config(small_dataset / "linkage.toml").for_source("crm")
    rows = pd.read_csv(small_dataset / "crm.csv", dtype=str).head(count).to_dict("records")
    return [MatchQuery("crm", {kind: row[c] for c, kind in config.fields.items()
                               if kind != "ignore" and isinstance(row[c], str)}, row[config.id_column])
            for row in rows]


@pytest.mark.skipif(not fork_is_available(), reason="match processes are forks")
def test_a_forked_matcher_answers_as_the_servers_after_every_change(graph_tables, small_dataset):
    matcher = RecordMatcher.load(graph_tables.parent / "resolved")
    queries = _queries(small_dataset, 40)
    [copy] = start_match_processes(matcher, 1)
    try:
        def both(batch: list[MatchQuery]) -> tuple[list[tuple], list[tuple]]:
            assert copy.send(batch)
            return _summary(copy.receive() or []), _summary(matcher.match_many(batch))

        forked, own = both(queries)
        assert forked == own and any(r[0] is not None for r in own)
        # The changes writes and erasures make, on the server's matcher only.
        first = matcher.match_many([queries[0]])[0]
        matcher.add("kiosk", "K-1", first.values, "E-new-customer")
        joined = first.would_join
        assert joined is not None
        moved = {key: "E-moved" for key in [f"crm:{queries[1].record_id}"]}
        matcher.reassign(moved)
        matcher.forget([f"crm:{queries[2].record_id}"])
        forked, own = both(queries)
        assert forked == own
        assert "E-new-customer" in [c[0] for c in own[0][2]]  # the added record is a candidate
        assert copy.alive
    finally:
        copy.stop()
    assert not copy.alive and copy.send(queries[:1]) is False  # stopped: the server matches itself


def _standardised_records(table) -> list[dict[str, str | None]]:
    frame = table.to_pandas()
    columns = [c for c in frame.columns if c not in ("source", "record_id")]
    return [{c: (None if pd.isna(v) else v) for c, v in row.items()} for row in frame[columns].to_dict("records")]


def test_one_records_blocking_keys_are_those_of_the_table(graph_tables, tmp_path):
    """A served match derives its records' keys one by one; the batch, column by column.
    Both over the synthetic run's records and FEBRL3's, as their runs standardised them."""
    from typer.testing import CliRunner

    from identigraph.cli.app import app
    from identigraph.resolution import datasets

    febrl = datasets.febrl(3, tmp_path)
    result = CliRunner().invoke(app, ["resolve", *map(str, febrl.files), "--config", str(febrl.config),
                                      "--out", str(tmp_path / "febrl3")])
    assert result.exit_code == 0, result.output
    for resolved in (graph_tables.parent / "resolved", tmp_path / "febrl3"):
        table = pq.read_table(resolved / "records.parquet")
        records = _standardised_records(table)
        encoded = EncodedRecords(table.to_pandas())
        add_blocking_keys(encoded)
        one_by_one = [blocking_key_values(record) for record in records]
        assert len(one_by_one) == len(records) > 1000
        for name in one_by_one[0]:
            column = encoded[name]
            expected = [column.values[code] if code >= 0 else None for code in column.codes.tolist()]
            assert [keys[name] for keys in one_by_one] == expected, name
