"""Connected components of a pair graph on Spark: min-label propagation with pointer jumping,
as joins and aggregations, so no executor holds more than its share of the edges."""
from __future__ import annotations

# Label propagation stops here at the latest; pointer jumping halves the distance to a
# component's smallest record each round, so a chain of 2^k records settles in about k rounds.
MAX_ROUNDS = 64


def connected_components(spark, edges):
    """``_idx``, ``_component`` (the component's smallest ``_idx``) of every record that
    ``edges`` (columns ``l``, ``r``) touch."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    both = (edges.select(F.col("l").alias("a"), F.col("r").alias("b"))
            .unionByName(edges.select(F.col("r").alias("a"), F.col("l").alias("b")))).persist(StorageLevel.MEMORY_AND_DISK)
    labels = both.groupBy("a").agg(F.least(F.min("b"), F.first("a")).alias("c")).withColumnRenamed("a", "_idx")
    labels = labels.select("_idx", F.least("c", "_idx").alias("c")).localCheckpoint()
    for _ in range(MAX_ROUNDS):
        # Each record takes the smallest label among its neighbours' ...
        neighbour = (both.join(labels.withColumnRenamed("_idx", "b"), "b")
                     .groupBy("a").agg(F.min("c").alias("n")).withColumnRenamed("a", "_idx"))
        step = labels.join(neighbour, "_idx").select("_idx", F.least("c", "n").alias("c"))
        # ... then its label's label (pointer jumping).
        jumped = (step.join(step.select(F.col("_idx").alias("c"), F.col("c").alias("cc")), "c", "left")
                  .select("_idx", F.least("c", F.coalesce("cc", "c")).alias("c"))).localCheckpoint()
        changed = jumped.join(labels.withColumnRenamed("c", "before"), "_idx").filter(F.col("c") != F.col("before")).count()
        labels = jumped
        if changed == 0:
            break
    both.unpersist()
    return labels.withColumnRenamed("c", "_component")
