"""The knowledge-graph stage: node and edge tables, Neo4j connections and loading."""
