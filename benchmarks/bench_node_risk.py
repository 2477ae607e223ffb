"""Risk of any node label from a labels file (issue 18) on the real Reddit graph: users and
subreddits with their 64 text features, posts as edges, imported as a user would
(`identigraph graph import`), scored with `identigraph score TABLES --labels FILE
--node-label User` (``scoring.node_risk.score_nodes``).

    python benchmarks/bench_node_risk.py [--seeds 5]

GADBench's fully supervised protocol: per seed, 40% of the users (stratified) are the labels
file; AUROC and AUPRC are measured on the other 60%, for the graph model and for the same
trees on the users' own features alone. Results: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from identigraph.graph.mapping import import_graph, parse_mapping  # noqa: E402
from identigraph.scoring.node_risk import GROUPS, score_nodes  # noqa: E402

REDDIT = ROOT.parent / "shared" / "data" / "reddit" / "reddit.npz"
USERS = 10_000


def reddit_tables(folder: Path) -> tuple[Path, np.ndarray]:
    data = np.load(REDDIT)
    x, (src, dst), y = data["x"], data["edge_index"], data["y"]
    columns = [f"f{i}" for i in range(x.shape[1])]
    pd.DataFrame(x[:USERS], columns=columns).assign(user_id=np.arange(USERS)).to_csv(folder / "users.csv", index=False)
    pd.DataFrame(x[USERS:], columns=columns).assign(subreddit=np.arange(len(x) - USERS)).to_csv(
        folder / "subreddits.csv", index=False)
    posts = (src < USERS) & (dst >= USERS)
    pd.DataFrame({"user": src[posts], "subreddit": dst[posts] - USERS}).to_csv(folder / "posts.csv", index=False)
    mapping = parse_mapping({
        "nodes": {"User": {"file": "users.csv", "id": "user_id", "features": columns},
                  "Subreddit": {"file": "subreddits.csv", "id": "subreddit", "features": columns}},
        "relationships": {"POSTED_IN": {"file": "posts.csv", "from": {"label": "User", "column": "user"},
                                        "to": {"label": "Subreddit", "column": "subreddit"}}}}, folder)
    import_graph(mapping, folder / "tables")
    return folder / "tables", y[:USERS]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    rows = {"graph": [], "no graph": []}
    with tempfile.TemporaryDirectory() as tmp:
        tables, y = reddit_tables(Path(tmp))
        for seed in range(args.seeds):
            train, test = train_test_split(np.arange(USERS), train_size=0.4, stratify=y, random_state=seed)
            labels = Path(tmp) / "labels.csv"
            pd.DataFrame({"id": train, "label": y[train]}).to_csv(labels, index=False)
            for name, groups in (("graph", GROUPS), ("no graph", ("own",))):
                score_nodes(tables, labels, "User", seed=seed, groups=groups, out_dir=Path(tmp) / name)
                risk = pd.read_parquet(Path(tmp) / name / "risk.parquet").set_index("id")
                scores = risk.loc[test.astype(str), "risk_score"].to_numpy()
                rows[name].append((roc_auc_score(y[test], scores), average_precision_score(y[test], scores)))
                print(f"seed {seed} {name}: AUROC {rows[name][-1][0]:.4f} AUPRC {rows[name][-1][1]:.4f}", flush=True)
    print("| model | AUROC (mean ± sd) | AUPRC (mean ± sd) |")
    print("|---|---:|---:|")
    for name, values in rows.items():
        values = np.array(values)
        print(f"| {name} | {values[:, 0].mean():.4f} ± {values[:, 0].std():.4f} | "
              f"{values[:, 1].mean():.4f} ± {values[:, 1].std():.4f} |")


if __name__ == "__main__":
    main()
