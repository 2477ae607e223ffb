"""One resolution job as ``identigraph resolve`` runs it: the config (given, the earlier run's,
or inferred from the files and written beside the artifacts), the saved model, erased
records, and a full or incremental link."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from identigraph.resolution.config import config_to_toml, load_config
from identigraph.resolution.erasure import FORGOTTEN_FILE, read_forgotten
from identigraph.resolution.infer import config_from_inference, infer_sources, inference_notes
from identigraph.resolution.ingest import input_files
from identigraph.resolution.linker import Linker, ResolutionResult
from identigraph.resolution.model import FellegiSunterModel

ENGINES = ("embedded", "spark")


def resolve_files(inputs: list[Path], out: Path, config: Path | None = None, model: Path | None = None,
                  pseudonym_key: bytes | None = None, previous: Path | None = None, fast: bool = False,
                  forgotten: Path | None = None, progress: Callable[[str], None] | None = None,
                  announce: Callable[[str], None] = lambda message: None, engine: str = "embedded",
                  spark_master: str | None = None) -> ResolutionResult:
    """Links ``inputs`` into customers under ``out``.

    ``config``: linkage.toml; left out, the earlier run's (with ``previous``) or one inferred
    from the files, written to ``out/linkage.toml`` with notes (passed to ``announce``).
    ``model``: model.json to score with instead of training. ``previous``: an earlier run's
    folder to link this batch against, keeping its ids (``fast``: score only the new pairs).
    ``forgotten``: forgotten.jsonl of records to quarantine. ``engine``: "embedded" (this
    process) or "spark" (``resolution.spark``, on ``spark_master``, default ``local[*]``)."""
    if engine not in ENGINES:
        raise ValueError(f"--engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if engine == "spark":
        if previous is not None or pseudonym_key is not None:
            raise ValueError("--engine spark runs full links on clear values: leave out --previous and "
                             "--pseudonymize (the embedded engine does both)")
        if any("://" in str(p) for p in [*inputs, out]):
            return _resolve_on_spark([str(p) for p in inputs], str(out), config, model, forgotten, progress,
                                     announce, spark_master)
    elif spark_master:
        raise ValueError("--spark-master is for --engine spark")
    elif any("://" in str(p) for p in [*inputs, out]):
        raise ValueError("inputs and --out on a Hadoop file system (a URI) need --engine spark")
    inputs, out = [Path(p) for p in inputs], Path(out)
    if fast and previous is None:
        raise ValueError("--fast links a batch against an earlier run: give --previous DIR")
    if previous is not None and (pseudonym_key or model or forgotten):
        raise ValueError("--previous uses the earlier run's model and forgotten.jsonl, on clear values: leave "
                         "out --model, --forgotten and --pseudonymize")
    if config is None and previous is not None and (Path(previous) / "linkage.toml").exists():
        config = Path(previous) / "linkage.toml"  # the batch is mapped as the earlier run's inputs were
    if config is not None:
        linkage = load_config(Path(config))
    else:
        inferred = infer_sources(input_files(inputs, None))
        notes = inference_notes(inferred)
        linkage = config_from_inference(inferred)
        out.mkdir(parents=True, exist_ok=True)
        (out / "linkage.toml").write_text(config_to_toml(
            linkage, header=f"Inferred by identigraph resolve from {', '.join(map(str, inputs))}.\n"
                            f"Check the types, edit, and rerun with --config.\n{notes}"))
        announce(notes)
        announce(f"No --config: inferred one and wrote it to {out / 'linkage.toml'}")
    erased = read_forgotten(Path(forgotten)) if forgotten else None
    saved = FellegiSunterModel.from_json(json.loads(Path(model).read_text())) if model else None
    if engine == "spark":
        from identigraph.resolution.spark.engine import SparkLinker
        from identigraph.resolution.spark.session import spark_session

        if erased is None and (out / FORGOTTEN_FILE).exists():
            erased = read_forgotten(out / FORGOTTEN_FILE)
        return SparkLinker(linkage, spark_session(spark_master), progress=progress).run(
            inputs, out, model=saved, forgotten=erased)
    linker = Linker(linkage, progress=progress)
    if previous is not None:
        return linker.run_incremental(inputs, Path(previous), out, fast=fast)
    return linker.run(inputs, out, model=saved, pseudonym_key=pseudonym_key, forgotten=erased)


def _resolve_on_spark(inputs: list[str], out: str, config: Path | None, model: Path | None, forgotten: Path | None,
                      progress: Callable[[str], None] | None, announce: Callable[[str], None],
                      spark_master: str | None) -> ResolutionResult:
    """A Spark run whose inputs or output are URIs (``hdfs://``, ``s3a://``...): the config
    must be given (inference reads local files)."""
    from identigraph.resolution.spark.engine import SparkLinker
    from identigraph.resolution.spark.session import spark_session

    if config is None:
        raise ValueError("with inputs or --out on a Hadoop file system, give --config linkage.toml (inference "
                         "reads local files)")
    saved = FellegiSunterModel.from_json(json.loads(Path(model).read_text())) if model else None
    erased = read_forgotten(Path(forgotten)) if forgotten else None
    return SparkLinker(load_config(Path(config)), spark_session(spark_master), progress=progress).run(
        inputs, out, model=saved, forgotten=erased)
