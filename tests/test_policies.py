"""Tests for the sampler policies beyond the LLaDA reference: scores, adaptive commit rules,
variable-length generation, logit constraints and the block hook.

The property test runs over every sampler yaml in ``conf/sampler`` (composed by Hydra) so
that a new policy is covered the moment its config exists. Hand-made denoisers pin down
each rule's documented choice.
"""

from __future__ import annotations

import itertools
import math
from functools import partial

import hydra.utils
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lit_illada.sampling import (
    AdaptiveSampler,
    ConfidenceSampler,
    EntropyBoundedSampler,
    FactorSampler,
    ThresholdSampler,
    VariableLengthSampler,
)
from lit_illada.sampling.constraints import NoRepeatNGram
from lit_illada.sampling.policies import entropy_bound_count, factor_count, threshold_count
from lit_illada.sampling.scores import Margin, NegativeEntropy, Probability, entropy
from tests.test_sampling import MASK_ID, SAMPLER_CONFIGS, VOCAB, TinyDenoiser, make_prompt, sampler_config

EOS_ID = 0
CONFIGS = {path.stem: sampler_config(path.stem) for path in SAMPLER_CONFIGS}
FIXED_LENGTH = sorted(name for name in CONFIGS if name != "variable_length")
ADAPTIVE = ["threshold", "factor", "eb"]


def build(name: str, **knobs):
    """The sampler of ``conf/sampler/<name>.yaml``; ``steps`` goes only to those that have it
    (the adaptive policies take no step count)."""
    if "steps" not in CONFIGS[name]:
        knobs.pop("steps", None)
    return hydra.utils.instantiate(CONFIGS[name], **{"mask_id": MASK_ID, **knobs})


def denoiser_states(denoiser, batch: int) -> list[torch.Tensor]:
    """The ids the sampler held at each denoiser call (the conditional half under CFG)."""
    return [x[:batch] for x in denoiser.inputs]


class Boosted(TinyDenoiser):
    """TinyDenoiser plus a fixed per-token logit offset (a denoiser that loves some tokens)."""

    def __init__(self, seed: int, boost: dict[int, float], scale: float = 1.0):
        super().__init__(seed)
        self.offset = torch.zeros(VOCAB)
        for token, value in boost.items():
            self.offset[token] = value
        self.scale = scale

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return super().__call__(x) * self.scale + self.offset


class SharpDenoiser(TinyDenoiser):
    """One-hot-ish logits (probability 1 in float32) on a token that depends on the input."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        target = super().__call__(x)[..., :MASK_ID].argmax(dim=-1)
        return torch.nn.functional.one_hot(target, VOCAB).float() * 40.0


class FixedDenoiser:
    """Position i predicts token ``tokens[i]`` with probability ``probs[i]`` whatever the input.

    The rest of the mass is spread evenly over the other non-mask tokens, so the entropy is
    known in closed form (``spread_entropy``).
    """

    def __init__(self, tokens: list[int], probs: list[float]):
        others = VOCAB - 2  # neither the predicted token nor [MASK]
        p = torch.tensor(probs)[:, None].expand(-1, VOCAB).clone()
        p = torch.where(torch.arange(VOCAB) == torch.tensor(tokens)[:, None], p, (1 - p) / others)
        self.logits = p.log()
        self.logits[:, MASK_ID] = -1e4
        self.inputs: list[torch.Tensor] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.clone())
        return self.logits[: x.shape[1]].expand(x.shape[0], -1, -1).clone()


def spread_entropy(c: float) -> float:
    rest = (1 - c) / (VOCAB - 2)
    return -c * math.log(c) - (1 - c) * math.log(rest)


class EosAfter:
    """Answer position ``j`` gets token ``1 + j % 5`` until ``eos_at[row]``, EOS from there on."""

    def __init__(self, prompt_length: int, eos_at: list[int]):
        self.prompt_length, self.eos_at = prompt_length, torch.tensor(eos_at)
        self.inputs: list[torch.Tensor] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.clone())
        answer = torch.arange(x.shape[1]) - self.prompt_length
        token = torch.where(answer[None] >= self.eos_at[:, None], EOS_ID, 1 + answer[None] % 5)
        return torch.nn.functional.one_hot(token, VOCAB).float() * 10.0 - 5.0


class HookedDenoiser(TinyDenoiser):
    """Records ``start_block`` notices and calls in order, like a KV cache would see them."""

    def __init__(self, seed: int):
        super().__init__(seed)
        self.events: list[tuple] = []

    def start_block(self, start: int, end: int) -> None:
        self.events.append(("block", start, end))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.events.append(("call", x.shape[1]))
        return super().__call__(x)


# ----------------------------------------------------------------------- property tests


@st.composite
def cases(draw):
    block_length = draw(st.integers(1, 5))
    num_blocks = draw(st.integers(1, 3))
    return {
        "seed": draw(st.integers(0, 2**16)),
        "batch": draw(st.integers(1, 3)),
        "prompt_length": draw(st.integers(0, 5)),
        "knobs": {
            "gen_length": block_length * num_blocks,
            "block_length": block_length,
            "steps": num_blocks * draw(st.integers(1, block_length)),
            "temperature": draw(st.sampled_from([0.0, 0.7])),
            "cfg_scale": draw(st.sampled_from([0.0, 0.0, 1.5])),
            "eos_id": draw(st.integers(0, 3)),  # low ids: TinyDenoiser predicts EOS now and then
            "no_repeat_ngram": draw(st.sampled_from([0, 0, 2])),
        },
    }


def current_block(before: torch.Tensor, prompt_length: int, block_length: int) -> tuple[int, int]:
    """The block a step works on: the first one in which some row still has a mask."""
    first = int((before[:, prompt_length:] == MASK_ID).any(dim=0).nonzero()[0])
    start = prompt_length + first // block_length * block_length
    return start, start + block_length


@pytest.mark.parametrize("name", sorted(CONFIGS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_every_policy_keeps_the_prompt_fills_the_answer_and_is_deterministic(name, case):
    knobs, batch, lp = case["knobs"], case["batch"], case["prompt_length"]
    sampler = build(name, **knobs)
    prompt = make_prompt(batch, lp, seed=case["seed"])
    denoiser = TinyDenoiser(seed=case["seed"])
    result = sampler.generate(denoiser, prompt, generator=torch.Generator().manual_seed(1))

    assert result.tokens.shape == (batch, lp + knobs["gen_length"])
    assert torch.equal(result.tokens[:, :lp], prompt), "prompt changed"
    assert (result.tokens != MASK_ID).all(), "mask left"
    assert result.nfe == len(denoiser.inputs) == len(result.committed_per_step)

    again = build(name, **knobs).generate(
        TinyDenoiser(seed=case["seed"]), prompt, generator=torch.Generator().manual_seed(1)
    )
    assert torch.equal(again.tokens, result.tokens), "not deterministic under a seed"
    assert (again.nfe, again.committed_per_step) == (result.nfe, result.committed_per_step)

    if isinstance(sampler, VariableLengthSampler):
        answer = result.generated
        after_eos = (answer == knobs["eos_id"]).cumsum(dim=1) > 0
        assert (answer[after_eos] == knobs["eos_id"]).all(), "not EOS after the first EOS"
        return
    assert sum(result.committed_per_step) == batch * knobs["gen_length"]
    states = denoiser_states(denoiser, batch) + [result.tokens]
    for step, (before, after) in enumerate(itertools.pairwise(states)):
        was_masked = before == MASK_ID
        assert torch.equal(after[~was_masked], before[~was_masked]), "committed token changed"
        new = was_masked & (after != MASK_ID)
        start, end = current_block(before, lp, knobs["block_length"])
        assert not new[:, :start].any() and not new[:, end:].any(), "committed outside the block"
        assert result.committed_per_step[step] == new.sum()
        if isinstance(sampler, AdaptiveSampler):
            open_rows = was_masked[:, start:end].any(dim=1)
            assert (new.sum(dim=1)[open_rows] >= 1).all(), "an open row committed nothing"
            assert not new[~open_rows].any(), "a finished row committed"
    if isinstance(sampler, ConfidenceSampler):
        assert result.nfe == knobs["steps"]


# ------------------------------------------------------------------------------- scores


def test_scores_on_a_known_distribution():
    probs = torch.tensor([[[0.5, 0.3, 0.2, 0.0]]])
    logits, x0 = probs.log(), torch.tensor([[0]])  # log(0) = -inf: a suppressed token
    assert Probability()(logits, x0, None).item() == pytest.approx(0.5)
    assert Margin()(logits, x0, None).item() == pytest.approx(0.2)
    expected = -(0.5 * math.log(0.5) + 0.3 * math.log(0.3) + 0.2 * math.log(0.2))
    assert NegativeEntropy()(logits, x0, None).item() == pytest.approx(-expected)
    assert torch.isfinite(entropy(logits)).all()


# ------------------------------------------------------------------------ adaptive rules


def test_rules_on_hand_made_rankings():
    ranked = torch.tensor([[0.95, 0.9, 0.85, 0.3], [0.9, 0.8, 0.76, 0.5], [0.4, 0.3, 0.2, 0.1]])
    assert threshold_count(ranked, 0.9).tolist() == [2, 1, 0]
    # 1 - f/(i+1) with f = 1: 0.5, 0.667, 0.75, 0.8 for i = 1..4.
    assert factor_count(ranked, 1.0).tolist() == [3, 3, 0]
    # f = 2: 0, 0.333, 0.5, 0.6: looser, yet the last row stops at 0.3 < 0.333.
    assert factor_count(ranked, 2.0).tolist() == [3, 3, 1]
    entropies = torch.tensor([[0.01, 0.02, 0.05, 0.3]])  # sum minus max: 0, 0.01, 0.03, 0.08
    assert entropy_bound_count(entropies, 0.1).tolist() == [4]
    assert entropy_bound_count(entropies, 0.05).tolist() == [3]
    assert entropy_bound_count(entropies, 0.0).tolist() == [1]


def first_step_commits(sampler, denoiser, prompt_length: int, steps: int = 1) -> list[set[int]]:
    """Answer positions committed at each of the first ``steps`` steps (one row)."""
    result = sampler.generate(denoiser, torch.tensor([[1] * prompt_length]))
    states = denoiser_states(denoiser, 1) + [result.tokens]
    return [
        set(((before[0] == MASK_ID) & (after[0] != MASK_ID)).nonzero().flatten().tolist())
        for before, after in itertools.pairwise(states[: steps + 1])
    ]


def test_factor_sampler_commits_the_documented_prefix():
    # Block confidences 0.5, 0.9, 0.76, 0.8 -> ranked 0.9, 0.8, 0.76, 0.5: the first three
    # pass 0.5, 0.667, 0.75; then 0.5 alone passes 0.5.
    denoiser = FixedDenoiser(tokens=[2, 3, 4, 5, 6, 7], probs=[0.99, 0.99, 0.5, 0.9, 0.76, 0.8])
    sampler = FactorSampler(factor=1.0, gen_length=4, block_length=4, mask_id=MASK_ID)
    assert first_step_commits(sampler, denoiser, prompt_length=2, steps=2) == [{3, 4, 5}, {2}]


def test_entropy_bounded_sampler_commits_the_documented_set():
    probs = [0.99, 0.99, 0.6, 0.999, 0.97, 0.9999, 0.98]  # positions 0, 1 are the prompt
    h = {i: spread_entropy(probs[i]) for i in range(2, 7)}
    assert sorted(h, key=h.get) == [5, 3, 6, 4, 2]  # the commit order: lowest entropy first
    # Sum minus max along that order: 0, h5, h5 + h3, h5 + h3 + h6, ...; gamma lets 3 in.
    gamma = h[5] + h[3] + h[6] / 2
    denoiser = FixedDenoiser(tokens=[2, 3, 4, 5, 6, 7, 8], probs=probs)
    sampler = EntropyBoundedSampler(gamma=gamma, gen_length=5, block_length=5, mask_id=MASK_ID)
    assert first_step_commits(sampler, denoiser, prompt_length=2) == [{5, 3, 6}]


def test_threshold_one_without_saturated_probabilities_is_the_top_one_confidence_sampler():
    # With every p below 1; a saturating denoiser commits several at once (test_metrics_meaning).
    knobs = {"gen_length": 12, "block_length": 4, "mask_id": MASK_ID}
    prompt = make_prompt(3, 4, seed=9)
    soft = partial(Boosted, boost={}, scale=0.25)  # every probability is well below 1
    threshold = ThresholdSampler(threshold=1.0, **knobs).generate(soft(seed=5), prompt)
    confidence = ConfidenceSampler(steps=12, **knobs).generate(soft(seed=5), prompt)
    assert torch.equal(threshold.tokens, confidence.tokens)
    assert threshold.nfe == confidence.nfe == 12
    assert threshold.committed_per_step == [3] * 12


@pytest.mark.parametrize("name", ADAPTIVE)
def test_a_certain_denoiser_fills_each_block_in_one_step(name):
    sampler = build(name, gen_length=12, block_length=4)
    result = sampler.generate(SharpDenoiser(seed=2), make_prompt(2, 3, seed=2))
    assert result.nfe == 3
    assert result.committed_per_step == [8, 8, 8]
    assert result.tokens_per_forward == 4.0


def test_rows_finish_their_blocks_independently():
    # Row 0 is certain everywhere, row 1 hesitant: row 0 commits its block at once, then
    # rides along committing nothing while row 1 goes one token at a time.
    class Mixed(SharpDenoiser):
        def __call__(self, x):
            logits = super().__call__(x)
            logits[1] = logits[1] * 0.02
            return logits

    sampler = ThresholdSampler(threshold=0.9, gen_length=4, block_length=4, mask_id=MASK_ID)
    result = sampler.generate(Mixed(seed=1), make_prompt(2, 3, seed=1))
    assert result.committed_per_step == [5, 1, 1, 1]


# -------------------------------------------------------------------------- constraints


@pytest.mark.parametrize("name", FIXED_LENGTH)
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_suppressed_eos_is_never_written(name, temperature):
    knobs = {"gen_length": 8, "block_length": 4, "steps": 8, "temperature": temperature, "eos_id": EOS_ID}
    prompt = make_prompt(2, 3, seed=4)
    generator = torch.Generator().manual_seed(0)
    loud = build(name, **knobs).generate(Boosted(seed=3, boost={EOS_ID: 8.0}), prompt, generator)
    assert (loud.generated == EOS_ID).any(), "the denoiser must want EOS for this test to bite"
    quiet = build(name, suppress_eos=True, **knobs).generate(
        Boosted(seed=3, boost={EOS_ID: 8.0}), prompt, generator
    )
    assert not (quiet.generated == EOS_ID).any()
    assert (quiet.tokens != MASK_ID).all()


def repeated_ngrams(row: torch.Tensor, n: int) -> int:
    grams = [tuple(row[i : i + n].tolist()) for i in range(len(row) - n + 1)]
    return len(grams) - len(set(grams))


@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_repeat_ngram_blocks_a_looping_denoiser(n):
    knobs = {"gen_length": 16, "block_length": 8, "steps": 16, "mask_id": MASK_ID}
    prompt = make_prompt(2, 3, seed=5)
    looping = partial(Boosted, seed=6, boost={7: 60.0})  # wants token 7 everywhere
    loop = ConfidenceSampler(**knobs).generate(looping(), prompt)
    assert (loop.generated == 7).all()
    fixed = ConfidenceSampler(no_repeat_ngram=n, **knobs).generate(looping(), prompt)
    for row in fixed.generated:
        assert repeated_ngrams(row, n) == 0
    assert (fixed.tokens != MASK_ID).all()


def test_no_repeat_ngram_bans_the_completing_token_only():
    m = MASK_ID
    x = torch.tensor([[9, 9, 1, 2, 5, 1, m, m, 2]])  # prompt 9 9; answer 1 2 5 1 _ _ 2
    rows, positions, tokens = NoRepeatNGram(2, m).banned(x, start=2)
    # position 6 follows a 1 (bigram "1 2" exists): 2 is banned. Position 7 precedes a 2 and
    # "1 2" exists: 1 is banned. Position 1 (prompt) is never looked at.
    assert sorted(zip(positions.tolist(), tokens.tolist(), strict=True)) == [(6, 2), (7, 1)]
    logits = torch.zeros(1, 9, VOCAB)
    constrained = NoRepeatNGram(2, m, exempt=2)(logits, x, 2)
    assert torch.isneginf(constrained[0, 7, 1]) and not torch.isinf(constrained[0, 6]).any()


def test_no_repeat_ngram_keeps_one_real_token():
    m, vocab = 3, 4  # tokens 0, 1, 2 and [MASK]; "0 x" exists for every x
    x = torch.tensor([[0, 0, 0, 1, 0, 2, 0, m]])
    logits = torch.zeros(1, 8, vocab)
    constrained = NoRepeatNGram(2, m)(logits, x, 0)
    assert torch.equal(constrained[0, 7], logits[0, 7])


# ---------------------------------------------------------------------- variable length


@pytest.mark.parametrize(
    ("inner", "steps"), [(ConfidenceSampler, 32), (partial(ThresholdSampler, threshold=0.9), None)]
)
def test_variable_length_stops_once_every_row_has_ended(inner, steps):
    lp = 3
    denoiser = EosAfter(prompt_length=lp, eos_at=[3, 13])
    sampler = VariableLengthSampler(
        inner=inner, gen_length=32, block_length=8, steps=steps, mask_id=MASK_ID, eos_id=EOS_ID
    )
    result = sampler.generate(denoiser, make_prompt(2, lp, seed=0))

    assert result.tokens.shape == (2, lp + 32)
    for row, eos_at in enumerate([3, 13]):
        answer = result.generated[row]
        assert (answer[:eos_at] != EOS_ID).all() and (answer[eos_at:] == EOS_ID).all()
    assert {x.shape[1] for x in denoiser.inputs} == {lp + 8, lp + 16}  # two blocks, never 32
    if inner is ConfidenceSampler:  # 8 steps per block; row 0 rides along in block 2
        assert result.nfe == 16 < sampler.inner.steps
        assert result.committed_per_step == [2] * 8 + [1] * 8
    else:  # a certain denoiser: one step per block
        assert result.nfe == 2
        assert result.committed_per_step == [16, 8]


def test_variable_length_runs_to_the_maximum_without_eos():
    knobs = {"gen_length": 12, "block_length": 4, "steps": 12, "mask_id": MASK_ID}
    never = partial(Boosted, seed=2, boost={EOS_ID: -1e4})
    prompt = make_prompt(2, 3, seed=3)
    result = VariableLengthSampler(eos_id=EOS_ID, **knobs).generate(never(), prompt)
    fixed = ConfidenceSampler(eos_id=EOS_ID, **knobs).generate(never(), prompt)
    assert result.nfe == 12 and sum(result.committed_per_step) == 2 * 12
    assert not (result.generated == EOS_ID).any()
    assert result.tokens.shape == fixed.tokens.shape


# ------------------------------------------------------------------------ block hook


@pytest.mark.parametrize("name", ["confidence", "threshold", "variable_length"])
def test_start_block_comes_before_each_blocks_first_call(name):
    denoiser = HookedDenoiser(seed=0)
    lp, sampler = 3, build(name, gen_length=12, block_length=4, steps=12, eos_id=EOS_ID)
    sampler.generate(denoiser, make_prompt(1, lp, seed=1))
    blocks = [event[1:] for event in denoiser.events if event[0] == "block"]
    assert blocks and blocks == [(lp + 4 * i, lp + 4 * (i + 1)) for i in range(len(blocks))]
    calls_per_block: list[int] = []
    for event in denoiser.events:
        if event[0] == "block":
            calls_per_block.append(0)
            end = event[2]
        else:
            assert calls_per_block, "a denoiser call came before the first start_block"
            assert event[1] >= end, "the block being decoded lies beyond the input"
            calls_per_block[-1] += 1
    assert min(calls_per_block) >= 1, "start_block for a block that was never decoded"


# -------------------------------------------------------------------------- validation

GOOD = {"gen_length": 16, "block_length": 8, "mask_id": MASK_ID}
STEPS = {"steps": 8}  # for the policies with a fixed schedule


@pytest.mark.parametrize(
    ("policy", "overrides", "error", "names"),
    [
        (ConfidenceSampler, {"score": "vibes"}, ValueError, ["sampler.score='vibes'", "margin", "entropy"]),
        (ConfidenceSampler, {"cache": "warm"}, ValueError, ["sampler.cache='warm'", "prefix", "dual"]),
        (ConfidenceSampler, {"no_repeat_ngram": -1}, ValueError, ["sampler.no_repeat_ngram"]),
        (ConfidenceSampler, {"suppress_eos": True}, ValueError, ["sampler.suppress_eos", "sampler.eos_id"]),
        (ConfidenceSampler, {"suppress_eos": "yes"}, TypeError, ["sampler.suppress_eos"]),
        (ConfidenceSampler, {"eos_id": MASK_ID}, ValueError, ["sampler.eos_id", "sampler.mask_id"]),
        (ConfidenceSampler, {"eos_id": -2}, ValueError, ["sampler.eos_id"]),
        (ThresholdSampler, {"threshold": 1.5}, ValueError, ["sampler.threshold=1.5: must be in (0, 1]"]),
        (ThresholdSampler, {"threshold": 0.0}, ValueError, ["sampler.threshold=0.0"]),
        (
            ThresholdSampler,
            {"score": NegativeEntropy()},
            ValueError,
            ["sampler.score=NegativeEntropy()", "sampler.threshold"],
        ),
        (FactorSampler, {"factor": 0.0}, ValueError, ["sampler.factor=0.0: must be > 0"]),
        (
            FactorSampler,
            {"score": NegativeEntropy()},
            ValueError,
            ["sampler.score=NegativeEntropy()", "sampler.factor"],
        ),
        (EntropyBoundedSampler, {"gamma": -0.1}, ValueError, ["sampler.gamma=-0.1"]),
        (VariableLengthSampler, {"suppress_eos": True, "eos_id": 0}, ValueError, ["sampler.suppress_eos"]),
        (
            VariableLengthSampler,
            {"inner": partial(ThresholdSampler, temperature=1.0)},
            ValueError,
            ["sampler.inner.temperature", "sampler"],
        ),
        (VariableLengthSampler, {"inner": dict}, TypeError, ["sampler.inner"]),
        (VariableLengthSampler, {"steps": 7}, ValueError, ["sampler.steps"]),  # the inner schedule's check
    ],
)
def test_validation_names_the_knob(policy, overrides, error, names):
    steps = STEPS if policy in (ConfidenceSampler, VariableLengthSampler) else {}
    with pytest.raises(error) as info:
        policy(**{**GOOD, **steps, **overrides})
    for name in names:
        assert name in str(info.value)


def test_variable_length_needs_eos_id_before_any_denoiser_call():
    sampler = build("variable_length", gen_length=8, block_length=4, steps=8)  # composes without it
    denoiser = TinyDenoiser(seed=0)
    with pytest.raises(ValueError, match="sampler.eos_id is null"):
        sampler.generate(denoiser, make_prompt(1, 2, seed=0))
    assert denoiser.inputs == []
