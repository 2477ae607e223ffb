"""``identigraph serve``: customers, risk and similar customers over HTTP, from a resolved
state and its graph tables (FastAPI on uvicorn; docs/api.md).

- ``keys``: API keys with scopes, stored as SHA-256 hashes;
- ``state``: the resolved artifacts and graph tables held in memory, indexed by customer;
- ``audit``: one JSON line per call (who, what, outcome; no record values);
- ``app``: the FastAPI application over them.
"""
