"""Tests for lit_illada.sampling.

The exactness tests compare against ``reference_generate`` below: an independent,
deliberately plain re-implementation of LLaDA's ``generate()`` written from
REFERENCE.md ("LLaDA sampler"). It shares no code with the library.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import hydra.utils
import pytest
import torch
from hydra import compose, initialize_config_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import DictConfig, OmegaConf

from lit_illada.sampling import ConfidenceSampler, Sampler, SampleResult
from lit_illada.sampling.scores import Margin, NegativeEntropy, Probability, Uniform

VOCAB = 48
MASK_ID = 47
CONF_DIR = Path(__file__).parents[1] / "conf"
# Every user-facing sampler; _base.yaml holds the shared knobs and is no sampler on its own.
SAMPLER_CONFIGS = sorted(p for p in (CONF_DIR / "sampler").glob("*.yaml") if not p.stem.startswith("_"))


def sampler_config(name: str, overrides: tuple[str, ...] = ()) -> DictConfig:
    """``conf/sampler/<name>.yaml`` composed by Hydra (with ``_base`` and the score and cache
    groups), as ``sampler=<name>`` gives it to the entry points."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=f"sampler/{name}", overrides=list(overrides))
    return OmegaConf.create(OmegaConf.to_container(cfg.sampler))


class TinyDenoiser:
    """A fixed random 'model' whose logits at every position depend on the whole input.

    Token and position embeddings, plus a mixed-in mean over the sequence, then a linear
    head. Like a trained model it never predicts the mask token (its logit is very
    negative; finite, because -inf would turn CFG's difference of logits into NaN), and it
    records every input so tests can replay what the sampler did.
    """

    def __init__(self, seed: int, vocab: int = VOCAB, mask_id: int = MASK_ID, dim: int = 16):
        g = torch.Generator().manual_seed(seed)
        self.embed = torch.randn(vocab, dim, generator=g)
        self.pos = torch.randn(128, dim, generator=g)
        self.mix = torch.randn(dim, dim, generator=g) / dim**0.5
        self.head = torch.randn(dim, vocab, generator=g) * 2.0
        self.mask_id = mask_id
        self.inputs: list[torch.Tensor] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.clone())
        h = self.embed[x] + self.pos[: x.shape[1]]
        h = torch.tanh(h + h.mean(dim=1, keepdim=True) @ self.mix)
        logits = h @ self.head
        logits[..., self.mask_id] = -1e4
        return logits


def reference_generate(
    model,
    prompt,
    *,
    steps,
    gen_length,
    block_length,
    temperature,
    cfg_scale,
    remasking,
    mask_id,
    generator,
):
    """LLaDA's generate(), transcribed step by step from REFERENCE.md with plain loops."""
    batch, prompt_len = prompt.shape
    x = torch.full((batch, prompt_len + gen_length), mask_id, dtype=torch.long)
    x[:, :prompt_len] = prompt.clone()
    prompt_index = x != mask_id
    assert gen_length % block_length == 0
    num_blocks = gen_length // block_length
    assert steps % num_blocks == 0
    steps_per_block = steps // num_blocks

    for block in range(num_blocks):
        block_start = prompt_len + block * block_length
        block_end = block_start + block_length
        # schedule per row, from the masked count at the block start
        schedule = []
        for row in range(batch):
            m = sum(int(x[row, i] == mask_id) for i in range(block_start, block_end))
            per_step = [m // steps_per_block] * steps_per_block
            for i in range(m % steps_per_block):
                per_step[i] += 1
            schedule.append(per_step)

        for step in range(steps_per_block):
            mask_index = x == mask_id
            if cfg_scale > 0:
                un_x = x.clone()
                un_x[prompt_index] = mask_id
                both = model(torch.cat([x, un_x], dim=0))
                cond, uncond = both[:batch], both[batch:]
                logits = uncond + (cfg_scale + 1) * (cond - uncond)
            else:
                logits = model(x)

            if temperature == 0:
                x0 = torch.argmax(logits, dim=-1)
            else:
                logits64 = logits.to(torch.float64)
                u = torch.rand(logits64.shape, dtype=torch.float64, generator=generator)
                x0 = torch.argmax(logits64.exp() / (-torch.log(u)) ** temperature, dim=-1)

            if remasking == "low_confidence":
                p = torch.softmax(logits, dim=-1)
                x0_p = torch.gather(p, -1, x0.unsqueeze(-1)).squeeze(-1)
            elif remasking == "random":
                x0_p = torch.rand((batch, x.shape[1]), generator=generator)
            else:
                raise NotImplementedError(remasking)

            x0_p[:, block_end:] = -float("inf")
            x0 = torch.where(mask_index, x0, x)
            confidence = torch.where(mask_index, x0_p, -float("inf"))
            for row in range(batch):
                _, chosen = torch.topk(confidence[row], k=schedule[row][step])
                for i in chosen.tolist():
                    x[row, i] = x0[row, i]
    return x


def make_prompt(batch: int, length: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, MASK_ID, (batch, length), generator=g)


SCORE_OF_REMASKING = {"low_confidence": Probability(), "random": Uniform()}  # reference name -> score


# ---------------------------------------------------------------------------- exactness


@pytest.mark.parametrize(
    ("steps", "gen_length", "block_length", "cfg_scale"),
    [(8, 8, 8, 0.0), (16, 16, 4, 0.0), (8, 16, 8, 0.0), (12, 24, 8, 1.0), (6, 24, 8, 0.5)],
)
@pytest.mark.parametrize("temperature", [0.0, 0.8])
@pytest.mark.parametrize("remasking", sorted(SCORE_OF_REMASKING))
def test_matches_llada_reference(
    steps, gen_length, block_length, cfg_scale, temperature, remasking
):
    knobs = {
        "steps": steps,
        "gen_length": gen_length,
        "block_length": block_length,
        "temperature": temperature,
        "cfg_scale": cfg_scale,
        "mask_id": MASK_ID,
    }
    prompt = make_prompt(batch=3, length=5, seed=steps + gen_length)
    expected = reference_generate(
        TinyDenoiser(seed=7),
        prompt,
        remasking=remasking,
        generator=torch.Generator().manual_seed(123),
        **knobs,
    )
    result = ConfidenceSampler(score=SCORE_OF_REMASKING[remasking], **knobs).generate(
        TinyDenoiser(seed=7), prompt, generator=torch.Generator().manual_seed(123)
    )
    assert torch.equal(result.tokens, expected)
    assert (expected != MASK_ID).all()


def test_reference_outputs_differ_between_policies():
    """Guards the exactness test against a denoiser so degenerate that any order agrees."""
    knobs = {"steps": 8, "gen_length": 16, "block_length": 8, "mask_id": MASK_ID}
    prompt = make_prompt(batch=2, length=4, seed=0)
    confident = ConfidenceSampler(**knobs).generate(TinyDenoiser(seed=1), prompt)
    random = ConfidenceSampler(score=Uniform(), **knobs).generate(
        TinyDenoiser(seed=1), prompt, generator=torch.Generator().manual_seed(0)
    )
    assert not torch.equal(confident.tokens, random.tokens)


def test_temperature_zero_draws_no_random_numbers():
    generator = torch.Generator().manual_seed(5)
    before, global_before = generator.get_state(), torch.get_rng_state()
    sampler = ConfidenceSampler(steps=8, gen_length=16, block_length=8, mask_id=MASK_ID)
    sampler.generate(TinyDenoiser(seed=2), make_prompt(2, 4, seed=1), generator=generator)
    sampler.generate(TinyDenoiser(seed=2), make_prompt(2, 4, seed=1))
    assert torch.equal(generator.get_state(), before)
    assert torch.equal(torch.get_rng_state(), global_before)


def test_result_statistics():
    sampler = ConfidenceSampler(steps=8, gen_length=16, block_length=8, mask_id=MASK_ID)
    result = sampler.generate(TinyDenoiser(seed=3), make_prompt(2, 4, seed=2))
    assert isinstance(result, SampleResult)
    assert result.generated.shape == (2, 16)
    assert result.nfe == 8
    assert result.committed_per_step == [4] * 8  # 2 tokens per step per row, 2 rows
    assert result.tokens_per_forward == 2.0
    assert result.seconds > 0
    assert result.tokens_per_second == pytest.approx(32 / result.seconds)


def test_cfg_counts_one_nfe_per_doubled_batch():
    denoiser = TinyDenoiser(seed=4)
    knobs = {"steps": 4, "gen_length": 8, "block_length": 4, "cfg_scale": 1.0, "mask_id": MASK_ID}
    prompt = torch.tensor([[5, 6, 7]])
    sampler = ConfidenceSampler(**knobs)
    result = sampler.generate(denoiser, prompt)
    assert result.nfe == len(denoiser.inputs) == 4
    for x in denoiser.inputs:
        cond, uncond = x.chunk(2)
        assert (uncond[:, :3] == MASK_ID).all()  # prompt masked in the unconditional copy
        assert torch.equal(uncond[:, 3:], cond[:, 3:])


# ----------------------------------------------------------------------- property tests


@st.composite
def sampling_cases(draw):
    block_length = draw(st.integers(1, 6))
    num_blocks = draw(st.integers(1, 3))
    return {
        "score": draw(st.sampled_from([Probability(), Uniform(), Margin(), NegativeEntropy()])),
        "seed": draw(st.integers(0, 2**16)),
        "batch": draw(st.integers(1, 3)),
        "prompt_length": draw(st.integers(0, 6)),
        "knobs": {
            "gen_length": block_length * num_blocks,
            "block_length": block_length,
            "steps": num_blocks * draw(st.integers(1, block_length)),
            "temperature": draw(st.sampled_from([0.0, 0.5, 1.0])),
            "cfg_scale": draw(st.sampled_from([0.0, 0.0, 2.0])),
            "mask_id": MASK_ID,
        },
    }


def expected_commits(block_length: int, steps_per_block: int) -> list[int]:
    base, extra = divmod(block_length, steps_per_block)
    return [base + (step < extra) for step in range(steps_per_block)]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=sampling_cases())
def test_sampler_invariants(case):
    knobs, batch, lp = case["knobs"], case["batch"], case["prompt_length"]
    sampler = ConfidenceSampler(score=case["score"], **knobs)
    denoiser = TinyDenoiser(seed=case["seed"])
    prompt = make_prompt(batch, lp, seed=case["seed"])
    result = sampler.generate(denoiser, prompt, generator=torch.Generator().manual_seed(1))

    assert result.tokens.shape == (batch, lp + knobs["gen_length"])
    assert torch.equal(result.tokens[:, :lp], prompt), "prompt changed"
    assert (result.tokens != MASK_ID).all(), "mask left"
    assert result.nfe == knobs["steps"] == len(denoiser.inputs)
    assert sum(result.committed_per_step) == batch * knobs["gen_length"]

    # Replay the denoiser inputs: each step commits exactly the scheduled number per row,
    # only inside the current block, and never re-masks or rewrites a committed token.
    states = [x[:batch] for x in denoiser.inputs] + [result.tokens]
    steps_per_block = sampler.steps_per_block
    schedule = expected_commits(knobs["block_length"], steps_per_block)
    for step, (before, after) in enumerate(itertools.pairwise(states)):
        was_masked = before == MASK_ID
        assert torch.equal(after[~was_masked], before[~was_masked]), "committed token changed"
        new = was_masked & (after != MASK_ID)
        block_start = lp + (step // steps_per_block) * knobs["block_length"]
        in_block = torch.zeros_like(new)
        in_block[:, block_start : block_start + knobs["block_length"]] = True
        assert not (new & ~in_block).any(), "committed outside the current block"
        assert new.sum(dim=1).tolist() == [schedule[step % steps_per_block]] * batch
        assert result.committed_per_step[step] == batch * schedule[step % steps_per_block]

    again = sampler.generate(
        TinyDenoiser(seed=case["seed"]), prompt, generator=torch.Generator().manual_seed(1)
    )
    assert torch.equal(again.tokens, result.tokens), "not deterministic under a seed"


# -------------------------------------------------------------------------- validation

GOOD = {"gen_length": 16, "block_length": 8, "steps": 8, "mask_id": MASK_ID}


@pytest.mark.parametrize(
    ("overrides", "error", "names"),
    [
        ({"block_length": 5}, ValueError, ["sampler.block_length", "4 or 8"]),
        ({"steps": 7}, ValueError, ["sampler.steps", "6 or 8"]),
        ({"steps": 17}, ValueError, ["sampler.steps", "16"]),
        ({"steps": 0}, ValueError, ["sampler.steps"]),
        ({"gen_length": 0}, ValueError, ["sampler.gen_length"]),
        ({"block_length": -8}, ValueError, ["sampler.block_length"]),
        ({"temperature": -0.1}, ValueError, ["sampler.temperature"]),
        ({"cfg_scale": -1.0}, ValueError, ["sampler.cfg_scale"]),
        ({"mask_id": -1}, ValueError, ["sampler.mask_id"]),
        ({"steps": 8.0}, TypeError, ["sampler.steps"]),
        ({"temperature": "hot"}, TypeError, ["sampler.temperature"]),
    ],
)
def test_validation_names_the_knob(overrides, error, names):
    with pytest.raises(error) as info:
        ConfidenceSampler(**{**GOOD, **overrides})
    for name in names:
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("prompt", "match"),
    [
        (torch.tensor([1, 2, 3]), "prompt must be"),
        (torch.tensor([[1.0, 2.0]]), "prompt must be"),
        (torch.tensor([[1, MASK_ID]]), "sampler.mask_id"),
    ],
)
def test_bad_prompts_fail_early(prompt, match):
    denoiser = TinyDenoiser(seed=0)
    with pytest.raises(ValueError, match=match):
        ConfidenceSampler(**GOOD).generate(denoiser, prompt)
    assert denoiser.inputs == []


def test_bad_denoiser_output_is_reported():
    with pytest.raises(ValueError, match="denoiser must map"):
        ConfidenceSampler(**GOOD).generate(lambda x: torch.zeros(x.shape), make_prompt(1, 2, 0))


# ---------------------------------------------------------------------------- configs


def test_sampler_configs_exist():
    names = {path.stem for path in SAMPLER_CONFIGS}
    expected = {"confidence", "random", "margin", "entropy", "threshold", "factor", "eb", "variable_length"}
    assert expected <= names


@pytest.mark.parametrize("path", SAMPLER_CONFIGS, ids=lambda p: p.stem)
def test_sampler_config_instantiates_and_generates(path):
    config = sampler_config(path.stem)
    assert OmegaConf.is_missing(config, "mask_id"), "the caller must pass mask_id"
    assert config.eos_id is None, "eos_id depends on the tokenizer; the caller passes it"
    sampler = hydra.utils.instantiate(config, mask_id=MASK_ID, eos_id=0)
    assert isinstance(sampler, Sampler)
    prompt = make_prompt(2, 4, seed=0)
    result = sampler.generate(TinyDenoiser(seed=0), prompt, torch.Generator().manual_seed(0))
    assert result.tokens.shape == (2, 4 + sampler.gen_length)
    assert torch.equal(result.tokens[:, :4], prompt)
    assert (result.tokens != MASK_ID).all()


@pytest.mark.parametrize("score", sorted(p.stem for p in (CONF_DIR / "sampler" / "score").glob("*.yaml")))
@pytest.mark.parametrize("name", ["confidence", "threshold"])
def test_score_group_overrides_any_sampler(name, score):
    # sampler/score=<option> on the command line; entropy is not in [0, 1], so threshold refuses it.
    config = sampler_config(name, (f"sampler/score={score}",))
    assert config.score._target_.startswith("lit_illada.sampling.scores.")
    if name == "threshold" and score == "entropy":
        with pytest.raises(Exception, match="does not lie in"):
            hydra.utils.instantiate(config, mask_id=MASK_ID)
        return
    sampler = hydra.utils.instantiate(config, mask_id=MASK_ID)
    assert type(sampler.score).__name__ == config.score._target_.rsplit(".", 1)[1]
