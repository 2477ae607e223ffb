"""The Spark session a run uses: ``local[*]`` unless a master URL is given."""
from __future__ import annotations

import os


class SparkUnavailable(RuntimeError):
    """pyspark is not installed, or no Java runtime starts it."""


def require_pyspark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError as error:
        raise SparkUnavailable('the Spark engine needs pyspark: pip install "identigraph[spark]"') from error


def spark_session(master: str | None = None, app_name: str = "identigraph resolve"):
    """A session on ``master`` (default ``local[*]``; ``spark://host:7077``, ``yarn``, ``k8s://``...).

    Arrow moves the batches between the JVM and Python; shuffles use as many partitions as
    cores (at least 4), which a cluster's ``spark.sql.shuffle.partitions`` overrides."""
    require_pyspark()
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    if master or not os.environ.get("SPARK_MASTER"):
        builder = builder.master(master or "local[*]")
    cores = os.cpu_count() or 2
    builder = (builder
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", "50000")
               .config("spark.sql.shuffle.partitions", str(max(4, 2 * cores)))
               .config("spark.sql.adaptive.enabled", "true")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.driver.memory", os.environ.get("IDENTIGRAPH_SPARK_DRIVER_MEMORY", "4g")))
    try:
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel(os.environ.get("IDENTIGRAPH_SPARK_LOG_LEVEL", "ERROR"))
        return session
    except Exception as error:  # the JVM did not start: no Java, or a bad master URL
        raise SparkUnavailable(f"Spark did not start ({error}); it needs Java 17 or later on PATH "
                               "(or JAVA_HOME) and a reachable --spark-master") from error
