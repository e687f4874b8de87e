"""The approximate KV cache: exact where nothing changed, and a drop-in for every policy."""

import pytest
import torch
from hydra.utils import instantiate

from lit_illada.core.model import ModelConfig, Transformer
from lit_illada.sampling import ConfidenceSampler
from lit_illada.sampling.cache import CachedDenoiser, DualCache, NoCache, PrefixCache
from tests.test_sampling import MASK_ID, SAMPLER_CONFIGS, make_prompt, sampler_config

BASE = dict(vocab_size=32, n_layers=2, d_model=32, n_heads=4, n_kv_heads=2, ffn_hidden=64, max_seq_len=64)


def model(**overrides) -> Transformer:
    torch.manual_seed(0)
    return Transformer(ModelConfig(**{**BASE, **overrides})).eval()


class NoMask(Transformer):
    """A random Transformer that, like a trained one, never predicts [MASK] (with or without cache)."""

    def __init__(self, config):
        torch.manual_seed(0)
        super().__init__(config)

    def forward(self, ids, **kwargs):
        return super().forward(ids, **kwargs).index_fill(-1, torch.tensor([MASK_ID]), -1e4)

    def prefill(self, ids):
        logits, cache = super().prefill(ids)
        return logits.index_fill(-1, torch.tensor([MASK_ID]), -1e4), cache

    def forward_window(self, ids, start, cache):
        return super().forward_window(ids, start, cache).index_fill(-1, torch.tensor([MASK_ID]), -1e4)


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
    denoiser = DualCache().wrap(net)
    assert isinstance(denoiser, CachedDenoiser)
    x = torch.randint(0, 31, (1, 24))
    for start in (8, 16):
        denoiser.start_block(start, start + 8)
        for _ in range(4):
            logits = denoiser(x)
            assert logits.shape == (1, 24, 32)
    assert calls == {"prefill": 2, "window": 6}


def test_cache_needs_a_cache_aware_model_and_a_known_mode():
    assert NoCache().wrap(print) is print
    with pytest.raises(TypeError, match=r"sampler.cache=PrefixCache\(\) needs a model with a KV cache"):
        PrefixCache().wrap(lambda ids: ids)
    with pytest.raises(ValueError, match="sampler.cache='warm'"):
        CachedDenoiser(model(), "warm")


@pytest.mark.parametrize("cache", ["prefix", "dual"])
@pytest.mark.parametrize("name", [path.stem for path in SAMPLER_CONFIGS])
def test_every_policy_takes_a_cache_and_one_step_per_block_is_exact(name, cache):
    # sampler/cache=<cache> as on the command line. With one denoiser call per block every call
    # is a refresh (a full forward), so the cached sampler is token-identical to the plain one.
    net = NoMask(ModelConfig(**{**BASE, "vocab_size": 48})).eval()
    knobs = {"mask_id": MASK_ID, "eos_id": 0, "gen_length": 8, "block_length": 4}
    if "steps" in sampler_config(name):
        knobs["steps"] = 2
    cached = instantiate(sampler_config(name, (f"sampler/cache={cache}",)), **knobs)
    plain = instantiate(sampler_config(name), **knobs)
    assert type(cached.cache).__name__ == f"{cache.capitalize()}Cache"
    prompt = make_prompt(2, 5, seed=0)
    with torch.no_grad():
        got = cached.generate(net, prompt, torch.Generator().manual_seed(0))
        assert (got.tokens != MASK_ID).all()
        if isinstance(cached, ConfidenceSampler):
            want = plain.generate(net, prompt, torch.Generator().manual_seed(0))
            assert torch.equal(got.tokens, want.tokens)
