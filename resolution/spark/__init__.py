"""The Spark engine: ``identigraph resolve --engine spark``.

The same resolution as ``resolution.linker.Linker``, on Spark DataFrames: every record-wise
and pair-wise step (standardising, comparing, scoring, clustering a component) runs the
embedded engine's own functions on Arrow batches (``mapInPandas``, ``applyInPandas``), and
the steps that need the whole data (blocks, value counts, connected components) are Spark
joins and aggregations. Decisions taken once per run (which rules and comparisons, the
model) are taken on the driver from counts. Needs ``pip install "identigraph[spark]"``.
"""
