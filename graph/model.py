"""The knowledge-graph model as data: node labels with their key, relationship types with
their end labels. The table builder, the Neo4j loader, the schema test and the docs all read
it, so the model is written down once.

Tables (the embedded default, ``identigraph graph build``):
- ``nodes/<Label>.parquet``: the key column first (named by ``NodeType.key``), then properties.
- ``edges/<TYPE>.parquet``: ``start`` (the start node's key), ``end`` (the end node's key),
  then properties.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

# Labels, relationship types and property names go into Cypher text (Neo4j takes no
# parameter for them): letters, digits and underscores only.
SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class NodeType:
    label: str
    key: str  # unique property; a uniqueness constraint in cypher/schema.cypher
    description: str


@dataclass(frozen=True)
class EdgeType:
    type: str
    start: str  # label
    end: str  # label
    description: str


NODE_TYPES: tuple[NodeType, ...] = (
    NodeType("Customer", "customer_id", "A resolved person: golden attributes and their provenance."),
    NodeType("SourceRecord", "record_key", "One channel record (`source:record_id`) as it was standardised."),
    NodeType("Product", "product_id", "A catalogue product."),
    NodeType("Category", "name", "A product category."),
    NodeType("Device", "device_id", "A device seen in web/app sessions or orders."),
    NodeType("Email", "address", "A canonical e-mail address."),
    NodeType("Phone", "number", "A phone matching key (national significant number)."),
    NodeType("Address", "address_key", "A street address (`street|postcode`, standardised)."),
)

EDGE_TYPES: tuple[EdgeType, ...] = (
    EdgeType("RESOLVED_TO", "SourceRecord", "Customer", "The record belongs to the customer."),
    EdgeType("MATCHED", "SourceRecord", "SourceRecord", "Scored pair evidence inside one customer."),
    EdgeType("PURCHASED", "Customer", "Product", "Orders of the product, aggregated per customer."),
    EdgeType("IN_CATEGORY", "Product", "Category", "The product's category."),
    EdgeType("USED_DEVICE", "Customer", "Device", "Sessions and orders from the device, aggregated."),
    EdgeType("HAS_EMAIL", "Customer", "Email", "An e-mail address on one of the customer's records."),
    EdgeType("HAS_PHONE", "Customer", "Phone", "A phone number on one of the customer's records."),
    EdgeType("HAS_ADDRESS", "Customer", "Address", "A street address on one of the customer's records."),
)

NODES = {node.label: node for node in NODE_TYPES}
EDGES = {edge.type: edge for edge in EDGE_TYPES}


@dataclass(frozen=True)
class GraphModel:
    """Labels with their key and relationship types with their ends: the built model above,
    or one a mapping declared (``identigraph graph import``, written to ``graph.json``)."""

    nodes: dict[str, NodeType]
    edges: dict[str, EdgeType]

    def to_json(self) -> dict:
        return {"nodes": {label: {"key": n.key, "description": n.description} for label, n in self.nodes.items()},
                "relationships": {t: {"start": e.start, "end": e.end, "description": e.description}
                                  for t, e in self.edges.items()}}

    @classmethod
    def from_json(cls, data: dict) -> "GraphModel":
        return cls({label: NodeType(label, n["key"], n.get("description", "")) for label, n in data["nodes"].items()},
                   {t: EdgeType(t, e["start"], e["end"], e.get("description", ""))
                    for t, e in data["relationships"].items()})


BUILT_MODEL = GraphModel(NODES, EDGES)


def model_of(tables_dir: Path) -> GraphModel:
    """The model of a table folder: the one ``graph.json`` declares (an imported graph), else
    the built model."""
    path = Path(tables_dir) / "graph.json"
    if path.exists():
        declared = json.loads(path.read_text()).get("model")
        if declared:
            return GraphModel.from_json(declared)
    return BUILT_MODEL
