"""transformers configuration for models exported by lit_illada (``convert to_hf``).

Self-contained: copied next to the weights and loaded with ``trust_remote_code=True``, so
it imports only transformers. The field names are LLaDA's (OLMo-style) ones, the names the
weights' ``config.json`` already uses, so a LLaDA / iLLaDA checkpoint and a model trained
with lit_illada share one config format. ``attribute_map`` adds the usual transformers names
(``hidden_size``, ``num_hidden_layers``, ...) for tools that read those.
"""

from __future__ import annotations

from transformers import PretrainedConfig

# The architecture switches of LLaDA's config that this model implements, at the only values
# it implements (LLaDA-8B's). The model refuses a config that sets any other value.
SUPPORTED_SETTINGS = {
    "activation_type": "silu",
    "alibi": False,
    "attention_layer_norm": False,
    "bias_for_layer_norm": False,
    "block_type": "llama",
    "include_bias": False,
    "include_qkv_bias": False,
    "input_emb_norm": False,
    "layer_norm_type": "rms",
    "layer_norm_with_affine": True,
    "rope": True,
    "scale_logits": False,
}


class LitIlladaConfig(PretrainedConfig):
    """A dense bidirectional Transformer: RMSNorm, RoPE, SwiGLU, grouped-query attention."""

    model_type = "lit_illada"
    attribute_map = {
        "hidden_size": "d_model",
        "num_attention_heads": "n_heads",
        "num_hidden_layers": "n_layers",
        "intermediate_size": "mlp_hidden_size",
        "max_position_embeddings": "max_sequence_length",
    }

    def __init__(
        self,
        d_model: int = 256,
        n_heads: int = 4,
        n_kv_heads: int | None = None,
        n_layers: int = 4,
        mlp_hidden_size: int = 768,
        vocab_size: int = 264,
        embedding_size: int | None = None,
        max_sequence_length: int = 512,
        rope_theta: float = 10_000.0,
        rms_norm_eps: float = 1e-5,
        weight_tying: bool = True,
        mask_token_id: int | None = None,
        init_std: float = 0.02,
        **kwargs,
    ) -> None:
        self.d_model = d_model
        self.n_heads = n_heads
        self.n_kv_heads = n_kv_heads  # None: MHA (OLMo's convention, which LLaDA's configs follow)
        self.n_layers = n_layers
        self.mlp_hidden_size = mlp_hidden_size
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size  # rows of the embedding and head; LLaDA pads the vocabulary
        self.max_sequence_length = max_sequence_length
        self.rope_theta = rope_theta
        self.rms_norm_eps = rms_norm_eps
        self.weight_tying = weight_tying
        self.mask_token_id = mask_token_id
        self.init_std = init_std
        # The head is the embedding itself when tied (the weights hold no separate head), so
        # transformers has nothing to tie: its own switch stays off.
        kwargs["tie_word_embeddings"] = False
        super().__init__(**kwargs)

    @property
    def num_key_value_heads(self) -> int:
        if self.n_kv_heads is not None:
            return self.n_kv_heads
        return 1 if getattr(self, "multi_query_attention", False) else self.n_heads

    @property
    def embedding_rows(self) -> int:
        return self.embedding_size or self.vocab_size
