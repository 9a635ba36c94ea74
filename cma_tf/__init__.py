"""cma_tf: Cross-Modality Attention with Semantic Graph Embedding (You et al., AAAI 2020)."""
