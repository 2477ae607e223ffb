"""Segmentation and fraud-risk scoring over the graph tables and the GNN embeddings.

- ``identity_graph``: customers joined by shared devices, phones, e-mails, addresses;
- ``features``: per-customer risk features in named groups;
- ``risk``: gradient-boosted trees with ring-preserving cross-validation and calibration,
  or an anomaly score without labels; the no-graph baseline;
- ``reasons``: reason codes by occlusion, in words;
- ``segments``: k-means segments with profiles, labels and stability;
- ``pipeline``: ``identigraph score``; ``neo4j_io``: write-back; ``report``: report.html.
"""
