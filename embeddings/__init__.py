"""GNN embeddings over customer-product-device edges (PyTorch Geometric)."""
import warnings

# torch_geometric 2.8 still calls torch.jit.script at import time; the deprecation notice is
# for PyG, not for our users, and would otherwise be printed by every `identigraph embed`.
warnings.filterwarnings("ignore", message=r"`torch.jit.script` is deprecated", category=FutureWarning)
