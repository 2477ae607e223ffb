"""Bring your own graph (`identigraph graph import MAPPING --out TABLES`, then `identigraph
load`): real files in, every line used or quarantined with a reason, any labels and types,
into the real Neo4j."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from identigraph.cli.app import app
from identigraph.graph.load import graph_counts, load_graph, table_counts
from identigraph.graph.mapping import MappingError, import_graph, load_mapping, parse_mapping
from identigraph.graph.model import model_of

runner = CliRunner()
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RETAIL = SHARED_DATA / "online_retail_ii" / "online_retail_II_2009-2010.parquet"
REDDIT = SHARED_DATA / "reddit" / "reddit.npz"

ORDER_LOG_MAPPING = """
[nodes.Customer]
id = "customer_id"
[nodes.Product]
id = "product_id"
[relationships.PURCHASED]
file = "order_lines.csv"
from = { label = "Customer", column = "Customer ID" }
to = { label = "Product", column = "StockCode" }
weight = "Quantity"
time = "InvoiceDate"
properties = ["Quantity"]
"""


@pytest.fixture(scope="module")
def order_log(tmp_path_factory) -> Path:
    """The first 4,000 lines of the real Online Retail II log as a retailer exports them (CSV,
    guests without a customer id), plus one line whose quantity is not a number."""
    if not RETAIL.exists():
        pytest.fail(f"{RETAIL} is missing: the real data sets in ../shared/data are part of the tests")
    folder = tmp_path_factory.mktemp("retail")
    lines = pd.read_parquet(RETAIL).head(4000)
    lines.to_csv(folder / "order_lines.csv", index=False)
    with open(folder / "order_lines.csv", "a") as handle:
        handle.write("489999,85123A,WHITE HANGING HEART,a dozen,2009-12-01 09:00:00,2.55,13085.0,United Kingdom\n")
    (folder / "mapping.toml").write_text(ORDER_LOG_MAPPING)
    return folder


def test_an_order_log_becomes_customers_products_and_purchases(order_log, tmp_path):
    result = runner.invoke(app, ["graph", "import", str(order_log / "mapping.toml"), "--out", str(tmp_path)],
                           terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "relationships.PURCHASED: read 4,001 = used" in result.output
    lines = pd.read_csv(order_log / "order_lines.csv", dtype=str)
    quarantine = pd.read_parquet(tmp_path / "quarantine.parquet")
    guests = lines["Customer ID"].isna()
    assert (quarantine["reason"] == "no Customer in column 'Customer ID'").sum() == guests.sum() > 0
    assert quarantine["reason"].str.contains("Quantity 'a dozen' is not a number").sum() == 1
    assert quarantine.loc[quarantine["reason"].str.contains("a dozen"), "row"].tolist() == [4000]
    edges = pd.read_parquet(tmp_path / "edges" / "PURCHASED.parquet")
    assert edges["count"].sum() + len(quarantine) == len(lines)  # lines in = used + quarantined
    # One relationship per customer and product: its lines counted, quantities summed, first and last time.
    used = lines[~guests].iloc[:-1].assign(customer=lambda f: f["Customer ID"].str.replace(r"\.0$", "", regex=True))
    pair = used.groupby(["customer", "StockCode"]).agg(n=("Invoice", "size"), q=("Quantity", lambda q: q.astype(int).sum()),
                                                        last=("InvoiceDate", "max"))
    (customer, product), expected = pair["n"].idxmax(), pair.loc[pair["n"].idxmax()]
    row = edges[(edges["start"] == customer) & (edges["end"] == product)].iloc[0]
    assert (row["count"], row["Quantity"], row["weight"]) == (expected["n"], expected["q"], expected["q"])
    assert row["last_time"] == pd.Timestamp(expected["last"])
    customers = pd.read_parquet(tmp_path / "nodes" / "Customer.parquet")
    assert set(customers["customer_id"]) == set(edges["start"]) and not customers["customer_id"].str.endswith(".0").any()
    model = model_of(tmp_path)
    assert model.edges["PURCHASED"].start == "Customer" and model.nodes["Product"].key == "product_id"


def test_any_label_of_an_imported_graph_is_segmented(order_log, tmp_path):
    """`identigraph segment TABLES --node-label LABEL` on the real order log: every node in one
    segment, segments told apart by what the purchases say (heavy and light buyers), each
    named; without --node-label, imported tables get one line naming their labels."""
    import json

    import_graph(load_mapping(order_log / "mapping.toml"), tmp_path)
    refused = runner.invoke(app, ["segment", str(tmp_path)], terminal_width=200)
    assert refused.exit_code == 1 and "--node-label (it has Customer, Product)" in refused.output
    result = runner.invoke(app, ["segment", str(tmp_path), "--node-label", "Customer", "--k", "3"], terminal_width=200)
    assert result.exit_code == 0, result.output
    segments = pd.read_parquet(tmp_path / "segments.parquet")
    customers = pd.read_parquet(tmp_path / "nodes" / "Customer.parquet")
    assert sorted(segments["id"]) == sorted(customers["customer_id"]) and segments["segment_id"].nunique() == 3
    profiles = pd.read_parquet(tmp_path / "segment_profiles.parquet")
    assert profiles["nodes"].sum() == len(customers) and profiles["segment"].str.len().min() > 0
    assert profiles["segment"].is_unique
    lines = pd.read_parquet(tmp_path / "edges" / "PURCHASED.parquet").groupby("start")["count"].sum()
    per_segment = lines.groupby(segments.set_index("id")["segment_id"]).median()
    assert per_segment.max() >= 3 * per_segment.min()
    assert json.loads((tmp_path / "segments.json").read_text())["label"] == "Customer"
    products = runner.invoke(app, ["segment", str(tmp_path), "--node-label", "Product"], terminal_width=200)
    assert products.exit_code == 0, products.output
    assert len(pd.read_parquet(tmp_path / "segments.parquet")) == len(pd.read_parquet(tmp_path / "nodes" /
                                                                                       "Product.parquet"))


def test_an_imported_graph_loads_into_neo4j_as_its_tables(order_log, tmp_path, neo4j_db, neo4j_settings):
    import_graph(load_mapping(order_log / "mapping.toml"), tmp_path)
    database = neo4j_settings.database
    load_graph(tmp_path, neo4j_db, database, batch_size=500)
    load_graph(tmp_path, neo4j_db, database, batch_size=700)  # a second load changes nothing
    assert graph_counts(neo4j_db, database, model_of(tmp_path)) == table_counts(tmp_path)
    edges = pd.read_parquet(tmp_path / "edges" / "PURCHASED.parquet")
    top = edges.groupby("start")["weight"].sum().idxmax()
    records, _, _ = neo4j_db.execute_query(
        "MATCH (c:Customer {customer_id: $id})-[p:PURCHASED]->(:Product) RETURN sum(p.weight) AS units, "
        "count(p) AS products, max(p.last_time) AS last", id=top, database_=database)
    assert records[0]["units"] == edges.loc[edges["start"] == top, "weight"].sum()
    assert records[0]["products"] == (edges["start"] == top).sum()
    assert records[0]["last"].to_native() == edges.loc[edges["start"] == top, "last_time"].max().to_pydatetime()
    constraints, _, _ = neo4j_db.execute_query("SHOW CONSTRAINTS YIELD labelsOrTypes, properties RETURN *",
                                                database_=database)
    assert {"labelsOrTypes": ["Customer"], "properties": ["customer_id"]} in [dict(r) for r in constraints]


def test_a_labelled_user_graph_with_features_and_broken_rows(tmp_path):
    """Reddit's users (64 features) and their subreddits, cut to 300 users: features as
    columns, unknown and repeated nodes and unparseable rows quarantined with reasons."""
    data = np.load(REDDIT)
    x, (src, dst) = data["x"], data["edge_index"]
    users = pd.DataFrame(x[:300], columns=[f"f{i}" for i in range(64)]).assign(user_id=range(300), tier="a")
    users.loc[::3, "tier"] = "b"
    users = pd.concat([users, users.iloc[[5]]])  # a repeated user
    users.to_csv(tmp_path / "users.csv", index=False)
    keep = (src < 300) & (dst >= 10_000)
    edges = pd.DataFrame({"user": src[keep], "subreddit": dst[keep] - 10_000})
    edges = pd.concat([edges, pd.DataFrame({"user": [100_000], "subreddit": [1]})])  # no such user
    edges.to_csv(tmp_path / "posted.csv", index=False)
    with open(tmp_path / "posted.csv", "a") as handle:
        handle.write('1,2,3\n')  # a field too many: unparseable
    (tmp_path / "mapping.toml").write_text("""
[nodes.User]
file = "users.csv"
id = "user_id"
features = [%s, "tier"]
[relationships.POSTED_IN]
file = "posted.csv"
from = { label = "User", column = "user" }
to = { label = "Subreddit", column = "subreddit" }
""" % ", ".join(f'"f{i}"' for i in range(64)))
    summary = import_graph(load_mapping(tmp_path / "mapping.toml"), tmp_path / "tables")
    nodes = pd.read_parquet(tmp_path / "tables" / "nodes" / "User.parquet")
    assert len(nodes) == 300 and nodes["f3"].dtype == np.float32
    np.testing.assert_allclose(nodes["f7"].to_numpy(), x[:300, 7], rtol=1e-6)
    assert summary.features["User"] == [*(f"f{i}" for i in range(64)), "tier=a", "tier=b"]
    assert nodes["tier=b"].sum() == 100
    quarantine = pd.read_parquet(tmp_path / "tables" / "quarantine.parquet")
    reasons = " | ".join(quarantine["reason"])
    assert "duplicate id '5' in column 'user_id'" in reasons
    assert "User '100000' is not among the User nodes" in reasons and "unparseable row" in reasons
    for entry, account in summary.events.items():
        assert account.read == account.used + account.quarantined, entry
    assert summary.events["relationships.POSTED_IN"].used == int(keep.sum())
    subreddits = pd.read_parquet(tmp_path / "tables" / "nodes" / "Subreddit.parquet")
    assert set(subreddits["id"]) == {str(v) for v in edges["subreddit"].iloc[:-1]}


@pytest.mark.parametrize("mapping, message", [
    ({"nodes": {"User": {"file": "u.csv"}}}, "needs id"),
    ({"relationships": {"KNOWS": {"file": "u.csv", "from": {"label": "User`) DETACH DELETE (n", "column": "a"},
                                  "to": {"label": "User", "column": "b"}}}}, "letters, digits and underscores"),
    ({"relationships": {"KNOWS": {"file": "nowhere.csv", "from": {"label": "User", "column": "a"},
                                  "to": {"label": "User", "column": "b"}}}}, "is not a file"),
    ({"nodes": {"User": {"file": "u.csv", "id": "id", "colour": "red"}}}, "unknown keys \\['colour'\\]"),
    ({"relationships": {"KNOWS": {"file": "u.csv", "from": "User", "to": {"label": "User", "column": "b"}}}},
     "from must be"),
    ({}, "no \\[nodes"),
])
def test_a_mapping_error_names_the_table_and_what_to_do(mapping, message, tmp_path):
    (tmp_path / "u.csv").write_text("id,a,b\n1,1,2\n")
    with pytest.raises(MappingError, match=message):
        parse_mapping(mapping, tmp_path)


def test_a_column_the_file_lacks_is_one_line_from_the_cli(tmp_path):
    (tmp_path / "u.csv").write_text("id,a,b\n1,1,2\n")
    (tmp_path / "m.toml").write_text('[nodes.User]\nfile = "u.csv"\nid = "user_id"\n')
    result = runner.invoke(app, ["graph", "import", str(tmp_path / "m.toml"), "--out", str(tmp_path / "t")])
    assert result.exit_code == 1
    assert "column(s) ['user_id'] are not in u.csv" in result.output and "Traceback" not in result.output


def test_any_label_is_scored_from_a_labels_file(tmp_path):
    """`identigraph score TABLES --labels FILE --node-label User` on an imported slice of the
    Reddit graph: every user scored, only labelled ones learnt from, held-out figures for the
    graph model and the no-graph baseline, a label row naming no user counted."""
    import json

    data = np.load(REDDIT)
    x, (src, dst), y = data["x"], data["edge_index"], data["y"]
    n = 3000
    pd.DataFrame(x[:n, :8], columns=[f"f{i}" for i in range(8)]).assign(user_id=range(n)).to_csv(
        tmp_path / "users.csv", index=False)
    keep = (src < n) & (dst >= 10_000)
    pd.DataFrame({"user": src[keep], "subreddit": dst[keep] - 10_000}).to_csv(tmp_path / "posts.csv", index=False)
    (tmp_path / "mapping.toml").write_text("""
[nodes.User]
file = "users.csv"
id = "user_id"
features = ["f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7"]
[relationships.POSTED_IN]
file = "posts.csv"
from = { label = "User", column = "user" }
to = { label = "Subreddit", column = "subreddit" }
""")
    import_graph(load_mapping(tmp_path / "mapping.toml"), tmp_path / "tables")
    labelled = np.arange(0, n, 2)
    pd.DataFrame({"id": [*labelled, 99_999], "label": [*y[labelled], 0]}).to_csv(tmp_path / "labels.csv", index=False)
    result = runner.invoke(app, ["score", str(tmp_path / "tables"), "--labels", str(tmp_path / "labels.csv"),
                                 "--node-label", "User", "--folds", "3"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "1 label rows name no User node" in " ".join(result.output.split())
    risk = pd.read_parquet(tmp_path / "tables" / "risk.parquet")
    assert len(risk) == n and risk["risk_score"].between(0, 1).all()
    assert risk["label"].notna().sum() == len(labelled) and risk["risk_reasons"].map(len).max() >= 1
    report = json.loads((tmp_path / "tables" / "risk.json").read_text())
    assert set(report["evaluation"]) == {"graph", "no graph"}
    assert report["feature_groups"]["labels"] == 2 and report["evaluation"]["graph"]["auroc"] > 0.5
    # The subreddits have no features, so the users two hops away speak for them: the mean and
    # the highest of their members' 8 features.
    assert report["feature_groups"]["peers"] == 16 and "neighbourhood" not in report["feature_groups"]
    # Embeddings (where `identigraph embed` writes them) are one more group, kept only where
    # the held-out AUPRC is higher with them: one that carries the label is kept, one that
    # says nothing (the same vector for every user) is not.
    def embed_users(vectors):
        (tmp_path / "tables" / "embeddings").mkdir(exist_ok=True)
        pd.DataFrame({"node_type": "User", "node_id": [str(i) for i in range(n)], "embedding": list(vectors)}
                     ).to_parquet(tmp_path / "tables" / "embeddings" / "embeddings.parquet", index=False)

    rng = np.random.default_rng(0)
    for vectors, kept in ((np.column_stack([y[:n] + rng.normal(0, 0.5, n), rng.normal(size=n)]), True),
                          (np.ones((n, 2)), False)):
        embed_users(vectors.astype(np.float32))
        run = runner.invoke(app, ["score", str(tmp_path / "tables"), "--labels", str(tmp_path / "labels.csv"),
                                  "--node-label", "User", "--folds", "3"], terminal_width=200)
        assert run.exit_code == 0, run.output
        assert ("the embeddings are used" in run.output) is kept, run.output
        report = json.loads((tmp_path / "tables" / "risk.json").read_text())
        assert report["embeddings"]["kept"] is kept and ("embedding" in report["feature_groups"]) is kept
    pd.DataFrame({"id": labelled, "label": 0}).to_csv(tmp_path / "none.csv", index=False)
    bad = runner.invoke(app, ["score", str(tmp_path / "tables"), "--node-label", "User",
                              "--labels", str(tmp_path / "none.csv")])
    assert bad.exit_code == 1 and "cross-validation needs" in " ".join(bad.output.split())
    # A label with no features of its own (the subreddits, named by the posts) is scored too.
    other = runner.invoke(app, ["score", str(tmp_path / "tables"), "--node-label", "Subreddit",
                                "--labels", str(tmp_path / "labels.csv"), "--folds", "3"])
    assert other.exit_code == 0, other.output


def test_links_within_a_label_count_whichever_way_round_they_are_listed(tmp_path):
    """A user graph may list each pair once, either way round: a user's neighbours, their
    features and the labelled cases near it come from its links both ways; the structure keeps
    the two directions apart (who reviews whom can matter)."""
    from identigraph.scoring.node_risk import label_features, node_graph

    (tmp_path / "users.csv").write_text("uid,age\na,20\nb,40\nc,60\nd,80\n")
    (tmp_path / "links.csv").write_text("src,dst\na,b\nc,b\nb,b\n")
    import_graph(parse_mapping({"nodes": {"User": {"file": "users.csv", "id": "uid", "features": ["age"]}},
                                "relationships": {"LINKED": {"file": "links.csv", "from": {"label": "User", "column": "src"},
                                                             "to": {"label": "User", "column": "dst"}}}},
                               tmp_path), tmp_path / "t")
    graph = node_graph(tmp_path / "t", "User")
    linked, within = graph.adjacencies[-1]
    assert within and (linked != linked.T).nnz == 0
    assert np.asarray(linked.sum(axis=1)).ravel().tolist() == [1, 2, 1, 0]  # b's self-link is not a neighbour
    assert graph.neighbourhood[:, 0].tolist() == [40, 40, 40, 0]  # mean age of the neighbours
    assert graph.structure_names[:2] == ["LINKED (start) neighbours", "LINKED (start) neighbours' degree"]
    # c (positive) and d (negative) are labelled: b hears of c through the link c -> b, listed
    # once, from c's side; a and d, with no labelled neighbour, stay at the base rate.
    shares = label_features(graph, np.array([0, 0, 1, 0.0]), np.array([False, False, True, True]))[:, 0]
    assert shares[1] > shares[0] == shares[3]


def test_an_id_column_neo4j_cannot_name_keys_the_nodes_by_a_name_it_can(tmp_path):
    (tmp_path / "users.csv").write_text("User ID,age\nu1,31\nu2,47\n")
    summary = import_graph(parse_mapping({"nodes": {"User": {"file": "users.csv", "id": "User ID",
                                                             "features": ["age"]}}}, tmp_path), tmp_path / "t")
    nodes = pd.read_parquet(tmp_path / "t" / "nodes" / "User.parquet")
    assert list(nodes.columns) == ["User_ID", "age"] and nodes["User_ID"].tolist() == ["u1", "u2"]
    assert model_of(tmp_path / "t").nodes["User"].key == "User_ID" and summary.features == {"User": ["age"]}
