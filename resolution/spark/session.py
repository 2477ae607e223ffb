"""The Spark session a run uses: ``local[*]`` unless a master URL is given."""
from __future__ import annotations

import os
import sys


class SparkUnavailable(RuntimeError):
    """pyspark is not installed, or no Java runtime starts it."""


def require_pyspark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError as error:
        raise SparkUnavailable('the Spark engine needs pyspark: pip install "identigraph[spark]"') from error


def spark_session(master: str | None = None, app_name: str = "identigraph resolve"):
    """A session on ``master`` (default ``local[*]``; ``spark://host:7077``, ``yarn``, ``k8s://``...).

    Under ``spark-submit`` its master and settings are used as given. Defaults for what they
    leave unset: Arrow between the JVM and Python, adaptive execution, and locally as many
    shuffle partitions as twice the cores (at least 4)."""
    require_pyspark()
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    submitted = SparkConf()  # what spark-submit and spark-defaults.conf set
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    elif not submitted.contains("spark.master"):
        builder = builder.master("local[*]")
    chosen = master or submitted.get("spark.master", "local[*]")
    defaults = {"spark.sql.execution.arrow.pyspark.enabled": "true",
                "spark.sql.execution.arrow.maxRecordsPerBatch": "50000",
                "spark.sql.adaptive.enabled": "true",
                "spark.ui.showConsoleProgress": "false",
                "spark.driver.memory": os.environ.get("IDENTIGRAPH_SPARK_DRIVER_MEMORY", "4g")}
    if chosen.startswith("local"):
        # Spark's 200 shuffle partitions are hundreds of tiny tasks on one machine.
        defaults["spark.sql.shuffle.partitions"] = str(max(4, 2 * (os.cpu_count() or 2)))
        # Local Python workers run this interpreter (its identigraph and dependencies), not
        # whichever python3 comes first on PATH. A cluster names its own (docs/scaling.md).
        if "PYSPARK_PYTHON" not in os.environ:
            os.environ["PYSPARK_PYTHON"] = sys.executable
            defaults["spark.pyspark.python"] = sys.executable
    for key, value in defaults.items():
        if not submitted.contains(key):  # a cluster's own settings win
            builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel(os.environ.get("IDENTIGRAPH_SPARK_LOG_LEVEL", "ERROR"))
        return session
    except Exception as error:  # the JVM did not start: no Java, or a bad master URL
        raise SparkUnavailable(f"Spark did not start ({error}); it needs Java 17 or later on PATH "
                               "(or JAVA_HOME) and a reachable --spark-master") from error
