"""GNN embeddings over customer-product-device edges (PyTorch Geometric)."""
