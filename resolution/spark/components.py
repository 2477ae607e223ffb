"""Connected components of a pair graph on Spark, as joins and aggregations: the alternating
large-star / small-star algorithm (Kiveris et al., "Connected Components in MapReduce and
Beyond", SoCC 2014), which settles in O(log^2 n) rounds whatever the graph's diameter (a
long chain included), no executor holding more than its share of the edges."""
from __future__ import annotations


def _undirected(edges):
    """Each edge once as (``u``, ``v``) with ``u`` < ``v``; self-loops dropped."""
    from pyspark.sql import functions as F

    return (edges.filter(F.col("u") != F.col("v"))
            .select(F.least("u", "v").alias("u"), F.greatest("u", "v").alias("v")).distinct())


def _both_ways(edges):
    from pyspark.sql import functions as F

    return edges.unionByName(edges.select(F.col("v").alias("u"), F.col("u").alias("v")))


def _large_star(edges):
    """Every node's larger neighbours are linked to the smallest of the node and its neighbours."""
    from pyspark.sql import functions as F

    directed = _both_ways(edges)
    smallest = directed.groupBy("u").agg(F.least(F.min("v"), F.first("u")).alias("m"))
    return _undirected(directed.join(smallest, "u").filter(F.col("v") > F.col("u"))
                       .select(F.col("v").alias("u"), F.col("m").alias("v")))


def _small_star(edges):
    """Every node and its smaller neighbours are linked to the smallest of them."""
    from pyspark.sql import functions as F

    down = _both_ways(edges).filter(F.col("v") < F.col("u"))
    smallest = down.groupBy("u").agg(F.min("v").alias("m"))
    linked = down.join(smallest, "u")
    return _undirected(linked.select(F.col("v").alias("u"), F.col("m").alias("v"))
                       .unionByName(linked.select(F.col("u"), F.col("m").alias("v"))))


def connected_components(spark, edges):
    """``_idx``, ``_component`` (the component's smallest ``_idx``) of every record that
    ``edges`` (columns ``l``, ``r``) touch."""
    from pyspark.sql import functions as F

    current = _undirected(edges.select(F.col("l").alias("u"), F.col("r").alias("v"))).localCheckpoint()
    while True:
        # Checkpoints keep each round's plan to one round.
        following = _small_star(_large_star(current)).localCheckpoint()
        changed = following.exceptAll(current).limit(1).count() + current.exceptAll(following).limit(1).count()
        current = following
        if changed == 0:
            break
    # A forest of stars: every node but the centre (its component's smallest) links to it.
    return (current.select(F.col("v").alias("_idx"), F.col("u").alias("_component"))
            .unionByName(current.select(F.col("u").alias("_idx"), F.col("u").alias("_component")))
            .groupBy("_idx").agg(F.min("_component").alias("_component")))
