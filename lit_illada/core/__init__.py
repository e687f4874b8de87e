"""The backbone: a dense bidirectional Transformer (RMSNorm, SwiGLU, RoPE, MHA/GQA) and its
attention backends. Plain PyTorch: imports nothing else from lit_illada, and no Lightning,
Hydra, OmegaConf or data."""
