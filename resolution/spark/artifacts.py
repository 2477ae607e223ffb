"""Reading inputs and writing artifacts for the Spark engine, on local paths or any
Hadoop-compatible URI. Artifacts under a plain path are the single files the embedded engine
writes, so ``graph build``, ``serve`` and ``resolve --previous`` read them unchanged; under a
URI they are Spark's folders of parts, under the same names."""
from __future__ import annotations

import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def stem(path: str) -> str:
    """A source's name: its file's stem, as the embedded engine names it."""
    return PurePosixPath(str(path).split("://", 1)[-1]).stem


def is_local(path) -> bool:
    """A plain path; any URI (``file://`` included) goes through Hadoop's file systems."""
    return "://" not in str(path)


def read_strings(spark, path: str):
    """One input as a DataFrame of strings, in file order (``_row``), with ``_corrupt``
    holding each line the reader could not parse (quarantined, not dropped)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    suffix = PurePosixPath(str(path)).suffix.lower()
    if suffix in (".csv", ".tsv"):
        delimiter = "\t" if suffix == ".tsv" else ","
        header = spark.read.option("header", True).option("sep", delimiter).csv(path).columns
        schema = StructType([StructField(c, StringType()) for c in header] + [StructField("_corrupt", StringType())])
        frame = (spark.read.schema(schema).option("header", True).option("sep", delimiter)
                 .option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", "_corrupt")
                 .option("enforceSchema", False).csv(path))
    elif suffix == ".jsonl":
        frame = (spark.read.option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", "_corrupt")
                 .json(path))
        if "_corrupt" not in frame.columns:
            frame = frame.withColumn("_corrupt", F.lit(None).cast("string"))
    elif suffix == ".parquet":
        frame = spark.read.parquet(path).withColumn("_corrupt", F.lit(None).cast("string"))
    else:
        raise ValueError(f"{path}: not a CSV, TSV, JSONL or Parquet file")
    frame = frame.select(*[F.col(f"`{c}`").cast("string").alias(c) for c in frame.columns])
    return frame.withColumn("_row", F.monotonically_increasing_id())


def with_index(frame, order: Sequence, name: str):
    """``frame`` with ``name`` = each row's position (from 0) in ``order`` (column names or
    sort expressions; unique keys):
    a sort, then per-partition offsets, without moving every row to one task."""
    from pyspark.sql import functions as F

    ordered = (frame.orderBy(*order).withColumn("_pid", F.spark_partition_id())
               .withColumn("_mid", F.monotonically_increasing_id())).persist()
    spans = ordered.groupBy("_pid").agg(F.count("*").alias("k"), F.min("_mid").alias("first")).toPandas()
    spans = spans.sort_values("_pid")
    spans["_shift"] = spans["k"].cumsum() - spans["k"] - spans["first"]
    shifts = frame.sparkSession.createDataFrame(spans[["_pid", "_shift"]].astype(np.int64))
    return (ordered.join(F.broadcast(shifts), "_pid").withColumn(name, F.col("_mid") + F.col("_shift"))
            .drop("_pid", "_mid", "_shift"))


def map_column(mapping: dict[str, str], column: str):
    """The value ``mapping`` gives each row's ``column`` (null where none)."""
    from pyspark.sql import functions as F

    if not mapping:
        return F.lit(None).cast("string")
    pairs = [item for key, value in mapping.items() for item in (F.lit(key), F.lit(value))]
    return F.create_map(*pairs)[F.col(column)]


def string_schema(columns: list[str], longs: Sequence[str] = ()):
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    return StructType([StructField(c, StringType()) for c in columns] + [StructField(c, LongType()) for c in longs])


def union_by_name(frames: list):
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame, allowMissingColumns=True)
    return result


def schema_of(frame: pd.DataFrame):
    """A Spark schema for a pandas frame's columns: integers, floats and booleans as such,
    everything else text."""
    from pyspark.sql.types import BooleanType, DoubleType, LongType, StringType, StructField, StructType

    def kind(dtype):
        if pd.api.types.is_bool_dtype(dtype):
            return BooleanType()
        if pd.api.types.is_integer_dtype(dtype):
            return LongType()
        if pd.api.types.is_float_dtype(dtype):
            return DoubleType()
        return StringType()

    return StructType([StructField(c, kind(frame[c].dtype)) for c in frame.columns])


def conform(frame: pd.DataFrame, shape: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with ``shape``'s columns, in its order, of the types ``schema_of`` gives."""
    out = frame.reindex(columns=shape.columns)
    for column in shape.columns:
        dtype = shape[column].dtype
        if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_integer_dtype(dtype) or \
                pd.api.types.is_float_dtype(dtype):
            continue
        out[column] = out[column].astype(object).where(out[column].notna(), None)
    return out


def write_parquet(frame, out_dir, name: str) -> None:
    """``out_dir/name``: one Parquet file where ``out_dir`` is local (its parts joined in
    order, row group by row group, never all in memory), Spark's folder of parts elsewhere."""
    target = f"{str(out_dir).rstrip('/')}/{name}"
    if not is_local(out_dir):
        frame.write.mode("overwrite").parquet(target)
        return
    local = Path(str(out_dir))
    local.mkdir(parents=True, exist_ok=True)
    parts_dir = local / f".{name}.{uuid.uuid4().hex}.parts"
    frame.write.mode("overwrite").parquet(str(parts_dir.resolve()))
    parts = sorted(p for p in parts_dir.iterdir() if p.suffix == ".parquet" and not p.name.startswith((".", "_")))
    schema = frame_schema_arrow(frame) if not parts else pq.read_schema(parts[0])
    destination = local / name
    tmp = local / f".{name}.tmp"
    with pq.ParquetWriter(tmp, schema) as writer:
        for part in parts:
            handle = pq.ParquetFile(part)
            for group in range(handle.num_row_groups):
                writer.write_table(handle.read_row_group(group).cast(schema))
    tmp.replace(destination)
    shutil.rmtree(parts_dir, ignore_errors=True)


def frame_schema_arrow(frame) -> pa.Schema:
    """The Arrow schema of a Spark DataFrame with no rows written."""
    return pa.Schema.from_pandas(frame.limit(0).toPandas(), preserve_index=False)


def write_text(out_dir, name: str, text: str) -> None:
    """A small artifact (model.json, run.json...) at ``out_dir/name``, local or on any
    Hadoop file system."""
    if is_local(out_dir):
        local = Path(str(out_dir))
        local.mkdir(parents=True, exist_ok=True)
        (local / name).write_text(text)
        return
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is None:
        raise RuntimeError(f"writing {name} to {out_dir} needs the run's Spark session")
    jvm = session._jvm
    assert jvm is not None
    path = jvm.org.apache.hadoop.fs.Path(f"{str(out_dir).rstrip('/')}/{name}")
    conf = session._jsc.hadoopConfiguration()
    stream = path.getFileSystem(conf).create(path, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()
