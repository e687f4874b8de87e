"""The approximate KV cache: exact where nothing changed, and a drop-in for every policy."""

import pytest
import torch

from lit_illada.core.model import ModelConfig, Transformer
from lit_illada.sampling.cache import CachedDenoiser, wrap_with_cache


def model(**overrides) -> Transformer:
    torch.manual_seed(0)
    base = dict(vocab_size=32, n_layers=2, d_model=32, n_heads=4, n_kv_heads=2, ffn_hidden=64, max_seq_len=64)
    return Transformer(ModelConfig(**{**base, **overrides})).eval()


@pytest.mark.parametrize(("start", "stop"), [(0, 24), (8, 16), (8, 24), (23, 24)])
def test_window_forward_on_unchanged_tokens_equals_the_full_forward(start, stop):
    net = model()
    ids = torch.randint(0, 31, (2, 24))
    with torch.no_grad():
        full, cache = net.prefill(ids)
        torch.testing.assert_close(full, net(ids))
        window = net.forward_window(ids[:, start:stop], start, cache)
    torch.testing.assert_close(window, full[:, start:stop], atol=1e-5, rtol=1e-5)


def test_window_sees_fresh_tokens_inside_and_cached_keys_outside():
    net = model()
    ids = torch.randint(0, 31, (1, 16))
    changed = ids.clone()
    changed[0, 10] = (ids[0, 10] + 1) % 31
    with torch.no_grad():
        _, cache = net.prefill(ids)
        inside = net.forward_window(changed[:, 8:16], 8, cache)
        exact = net(changed)[:, 8:16]
        stale = net.forward_window(ids[:, 8:16], 8, cache)
    assert not torch.allclose(inside, stale)  # the window uses its own new token
    assert not torch.allclose(inside, exact)  # ...but the prefix keys are the cached ones


def test_cached_denoiser_refreshes_once_per_block():
    net = model()
    calls = {"prefill": 0, "window": 0}
    prefill, window = net.prefill, net.forward_window
    net.prefill = lambda ids: (calls.__setitem__("prefill", calls["prefill"] + 1), prefill(ids))[1]
    net.forward_window = lambda *a: (calls.__setitem__("window", calls["window"] + 1), window(*a))[1]
    denoiser = CachedDenoiser(net, "dual")
    x = torch.randint(0, 31, (1, 24))
    for start in (8, 16):
        denoiser.start_block(start, start + 8)
        for _ in range(4):
            logits = denoiser(x)
            assert logits.shape == (1, 24, 32)
    assert calls == {"prefill": 2, "window": 6}


def test_cache_needs_a_cache_aware_model_and_a_known_mode():
    assert wrap_with_cache(print, "none") is print
    with pytest.raises(TypeError, match="sampler.cache=prefix needs a model with a KV cache"):
        wrap_with_cache(lambda ids: ids, "prefix")
    with pytest.raises(ValueError, match="sampler.cache='warm'"):
        CachedDenoiser(model(), "warm")
