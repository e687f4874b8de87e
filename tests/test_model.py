"""Backbone numerics: the facts REFERENCE.md fixes, checked on small shapes."""

import math

import pytest
import torch

from lit_illada.core.attention import eager_attention, sdpa_attention
from lit_illada.config.build import load_model_preset as load_preset
from lit_illada.planning.memory import count_params
from lit_illada.core.model import ModelConfig, RMSNorm, Transformer, apply_rope, rope_tables


def small_config(**overrides) -> ModelConfig:
    base = dict(vocab_size=64, n_layers=2, d_model=32, n_heads=4, n_kv_heads=2, ffn_hidden=48, max_seq_len=64)
    return ModelConfig(**{**base, **overrides})


@pytest.mark.parametrize(
    ("preset", "expected"), [("illada_8b", 7_615_025_152), ("llada_8b", 8_015_581_184)]
)
def test_8b_presets_have_the_exact_parameter_counts_on_meta(preset, expected):
    config = load_preset(preset)
    assert count_params(config) == expected
    with torch.device("meta"):
        model = Transformer(config)
    assert all(p.is_meta for p in model.parameters())  # nothing was allocated


def test_illada_8b_matches_the_reference_architecture():
    c = load_preset("illada_8b")
    assert (c.n_layers, c.d_model, c.n_heads, c.n_kv_heads, c.ffn_hidden) == (32, 4096, 32, 8, 14336)
    assert (c.vocab_size, c.max_seq_len, c.tie_embeddings) == (155136, 8192, True)
    l = load_preset("llada_8b")
    assert (l.n_kv_heads, l.ffn_hidden, l.vocab_size, l.tie_embeddings, l.rope_theta) == (32, 12288, 126464, False, 500000.0)


def test_rmsnorm_normalizes_in_float32_then_scales():
    norm = RMSNorm(8, eps=1e-5)
    with torch.no_grad():
        norm.weight.copy_(torch.arange(1.0, 9.0))
    x = torch.randn(3, 8, dtype=torch.bfloat16)
    x32 = x.float()
    expected = (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + 1e-5)).to(torch.bfloat16) * norm.weight
    torch.testing.assert_close(norm(x), expected)


def test_rope_rotates_half_against_half_with_theta_frequencies():
    head_dim, theta = 8, 500000.0
    cos, sin = rope_tables(5, head_dim, theta)
    x = torch.randn(1, 1, 5, head_dim)
    out = apply_rope(x, cos, sin)
    for pos in range(5):
        for i in range(head_dim // 2):
            angle = pos * theta ** (-2 * i / head_dim)
            a, b = x[0, 0, pos, i], x[0, 0, pos, i + head_dim // 2]
            assert math.isclose(out[0, 0, pos, i], a * math.cos(angle) - b * math.sin(angle), abs_tol=1e-5)
            assert math.isclose(out[0, 0, pos, i + head_dim // 2], b * math.cos(angle) + a * math.sin(angle), abs_tol=1e-5)


def test_gqa_equals_mha_with_repeated_kv_heads():
    torch.manual_seed(0)
    gqa = Transformer(small_config(n_heads=4, n_kv_heads=2))
    mha = Transformer(small_config(n_heads=4, n_kv_heads=4))
    state = gqa.state_dict()
    head_dim = 8
    for name, tensor in list(state.items()):
        if name.endswith(("k_proj.weight", "v_proj.weight")):
            # KV head j serves query heads 2j and 2j+1 (repeat_interleave order)
            heads = tensor.view(2, head_dim, -1).repeat_interleave(2, dim=0)
            state[name] = heads.reshape(4 * head_dim, -1)
    mha.load_state_dict(state)
    ids = torch.randint(0, 64, (2, 16))
    torch.testing.assert_close(gqa(ids), mha(ids), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("kv_heads", [1, 2, 4])
def test_eager_and_sdpa_attention_agree(causal, kv_heads):
    torch.manual_seed(0)
    q = torch.randn(2, 4, 10, 8)
    k, v = torch.randn(2, kv_heads, 10, 8), torch.randn(2, kv_heads, 10, 8)
    torch.testing.assert_close(eager_attention(q, k, v, causal), sdpa_attention(q, k, v, causal), atol=1e-5, rtol=1e-5)


def test_model_outputs_agree_across_backends():
    torch.manual_seed(0)
    eager = Transformer(small_config(attn_backend="eager"))
    sdpa = Transformer(small_config(attn_backend="sdpa"))
    sdpa.load_state_dict(eager.state_dict())
    ids = torch.randint(0, 64, (2, 12))
    torch.testing.assert_close(eager(ids), sdpa(ids), atol=1e-5, rtol=1e-5)


def test_attention_is_bidirectional_unless_causal():
    torch.manual_seed(0)
    model = Transformer(small_config())
    ids = torch.randint(0, 64, (1, 12))
    changed = ids.clone()
    changed[0, -1] = (ids[0, -1] + 1) % 64
    # Changing the last token changes the first position's logits only without a causal mask.
    assert not torch.allclose(model(ids)[0, 0], model(changed)[0, 0])
    torch.testing.assert_close(model(ids, causal=True)[0, 0], model(changed, causal=True)[0, 0])


def test_tied_embeddings_share_storage_and_untied_do_not():
    tied = Transformer(small_config(tie_embeddings=True))
    assert tied.lm_head.weight.data_ptr() == tied.wte.weight.data_ptr()
    untied = Transformer(small_config(tie_embeddings=False))
    assert untied.lm_head.weight.data_ptr() != untied.wte.weight.data_ptr()
    assert untied.num_params() - tied.num_params() == 64 * 32


def test_logits_at_selects_rows_of_the_full_logits():
    torch.manual_seed(0)
    model = Transformer(small_config())
    ids = torch.randint(0, 64, (2, 10))
    where = torch.rand(2, 10) < 0.4
    torch.testing.assert_close(model(ids, logits_at=where), model(ids)[where])


def test_xformers_backend_fails_with_a_clear_message_when_unavailable():
    model = Transformer(small_config(attn_backend="xformers"))
    with pytest.raises(RuntimeError, match="attn_backend"):
        model(torch.randint(0, 64, (1, 4)))


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"d_model": 30}, "model.d_model"),
        ({"n_kv_heads": 3}, "model.n_kv_heads"),
        ({"attn_backend": "flash3"}, "model.attn_backend"),
        ({"n_layers": 0}, "model.n_layers"),
        ({"vocab_size": "big"}, "model.vocab_size"),
    ],
)
def test_bad_model_configs_name_the_key(overrides, key):
    with pytest.raises(ValueError, match=key):
        small_config(**overrides)


def test_sequence_longer_than_max_is_rejected():
    model = Transformer(small_config(max_seq_len=8))
    with pytest.raises(ValueError, match="max_seq_len"):
        model(torch.zeros(1, 9, dtype=torch.long))
