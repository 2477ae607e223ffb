"""Identity resolution: read channel extracts, standardise, block, score, cluster."""
