"""Tests for lit_illada.scoring.

Exact values come from plain re-implementations in this file, written from REFERENCE.md
("Scoring multiple choice") with loops and full enumeration; they share no code with the
library. The denoisers are tiny enough that the LLaDA estimator's expectation can be
computed exactly, by enumerating every masked count and every masked subset.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import hydra.utils
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue

from lit_illada.scoring import ConfidenceScorer, LikelihoodScorer, Scorer, stratified_mask_counts

VOCAB = 6
MASK_ID = 5  # real tokens are 0..4
SCORING_CONFIGS = sorted((Path(__file__).parents[1] / "conf" / "scoring").glob("*.yaml"))


class TinyDenoiser:
    """A fixed random 'model' whose logits at every position depend on the whole input.

    Token and position embeddings plus a mixed-in mean over the sequence, then a linear head,
    so predictions change with the context and with which positions are masked. Like a
    trained model it never predicts the mask (a very negative but finite logit, so that
    guidance's difference of logits stays finite). Records every input.
    """

    def __init__(self, seed: int, dim: int = 8):
        g = torch.Generator().manual_seed(seed)
        self.embed = torch.randn(VOCAB, dim, generator=g)
        self.pos = torch.randn(32, dim, generator=g)
        self.mix = torch.randn(dim, dim, generator=g) / dim**0.5
        self.head = torch.randn(dim, VOCAB, generator=g) * 1.5
        self.inputs: list[torch.Tensor] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.clone())
        h = self.embed[x] + self.pos[: x.shape[1]]
        h = torch.tanh(h + h.mean(dim=1, keepdim=True) @ self.mix)
        logits = h @ self.head
        logits[..., MASK_ID] = -1e4
        return logits


class PreferringDenoiser:
    """Strongly predicts token ``(x[0] + j) % 5`` at position ``j``: a context-dependent favourite."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        favourite = (x[:, :1] + torch.arange(x.shape[1])) % MASK_ID
        logits = torch.zeros(*x.shape, VOCAB)
        logits.scatter_(2, favourite.unsqueeze(2), 8.0)
        logits[..., MASK_ID] = -1e4
        return logits


# ------------------------------------------------------------------ plain reference code


def reference_log_probs(denoiser, ids: list[int], context_length: int, cfg_scale: float) -> torch.Tensor:
    """float64 log-softmax (T, V) of one sequence, guided as REFERENCE.md describes."""
    cond = denoiser(torch.tensor([ids])).double()[0]
    if cfg_scale == 0:
        return cond.log_softmax(-1)
    unconditional = [MASK_ID] * context_length + ids[context_length:]
    uncond = denoiser(torch.tensor([unconditional])).double()[0]
    return (uncond + (cfg_scale + 1) * (cond - uncond)).log_softmax(-1)


def exact_llada_score(denoiser, context: list[int], continuation: list[int], cfg_scale: float = 0.0) -> float:
    """Minus the exact expectation of the LLaDA estimator: n uniform on {1..L}, then a uniform
    subset of size n, then sum over masked tokens of CE * L / n."""
    length, expected = len(continuation), 0.0
    for n in range(1, length + 1):
        for subset in itertools.combinations(range(length), n):
            ids = context + [MASK_ID if i in subset else tok for i, tok in enumerate(continuation)]
            log_probs = reference_log_probs(denoiser, ids, len(context), cfg_scale)
            loss = sum(-log_probs[len(context) + i, continuation[i]].item() for i in subset) * length / n
            expected += loss / length / math.comb(length, n)
    return -expected


def reference_confidence_score(denoiser, context: list[int], continuation: list[int], cfg_scale: float = 0.0):
    """iLLaDA's reveal, one position at a time, with plain loops. Returns (score, reveal order)."""
    ids = context + [MASK_ID] * len(continuation)
    score, order = 0.0, []
    for _ in continuation:
        log_probs = reference_log_probs(denoiser, ids, len(context), cfg_scale)
        best, best_confidence = None, -math.inf
        for i in range(len(context), len(ids)):
            confidence = log_probs[i].exp().max().item()
            if ids[i] == MASK_ID and confidence > best_confidence:
                best, best_confidence = i, confidence
        true_token = continuation[best - len(context)]
        score += log_probs[best, true_token].item()
        ids[best] = true_token
        order.append(best)
    return score, order


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The tensors here are tiny: intra-op threads only add synchronisation, which on a busy
    2-core machine costs 100x (milliseconds per op). Restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- confidence


@pytest.mark.parametrize("cfg_scale", [0.0, 0.7])
def test_confidence_one_token_is_the_exact_log_probability(cfg_scale):
    context, true_token = [1, 3, 0], 2
    expected = reference_log_probs(TinyDenoiser(0), context + [MASK_ID], len(context), cfg_scale)[
        -1, true_token
    ]
    scorer = ConfidenceScorer(mask_id=MASK_ID, cfg_scale=cfg_scale)
    assert scorer.score(TinyDenoiser(0), context, [true_token]) == pytest.approx(expected.item(), abs=1e-5)


@pytest.mark.parametrize("cfg_scale", [0.0, 0.5])
@pytest.mark.parametrize(
    ("context", "continuation"), [([1, 2], [0, 4, 4]), ([], [3, 1]), ([4], [0, 1, 2, 3, 2])]
)
def test_confidence_matches_plain_reveal(context, continuation, cfg_scale):
    expected, order = reference_confidence_score(TinyDenoiser(3), context, continuation, cfg_scale)
    assert sorted(order) == list(range(len(context), len(context) + len(continuation)))
    denoiser = TinyDenoiser(3)
    got = ConfidenceScorer(mask_id=MASK_ID, cfg_scale=cfg_scale).score(denoiser, context, continuation)
    assert got == pytest.approx(expected, abs=1e-5)
    assert len(denoiser.inputs) == len(continuation)  # one denoiser call per revealed token
    revealed = [
        (after != before).nonzero()[0, 1].item() for before, after in itertools.pairwise(denoiser.inputs)
    ]
    assert revealed == order[:-1]


def test_confidence_order_is_not_left_to_right():
    """Guards the reveal test against a denoiser under which any order would agree."""
    orders = {tuple(reference_confidence_score(TinyDenoiser(s), [1], [0, 1, 2, 3])[1]) for s in range(6)}
    assert any(order != tuple(sorted(order)) for order in orders)


def test_confidence_draws_no_random_numbers():
    generator, global_state = seeded(5), torch.get_rng_state()
    before = generator.get_state()
    ConfidenceScorer(mask_id=MASK_ID).score(TinyDenoiser(1), [1, 2], [3, 4], generator=generator)
    ConfidenceScorer(mask_id=MASK_ID).score(TinyDenoiser(1), [1, 2], [3, 4])
    assert torch.equal(generator.get_state(), before)
    assert torch.equal(torch.get_rng_state(), global_state)


# ----------------------------------------------------------------------------- likelihood


@pytest.mark.parametrize(
    ("mc_num", "batch_size", "cfg_scale"),
    [(6, 6, 0.0), (5, 2, 0.0), (4, 4, 0.5)],
    ids=["L-divides-B", "B-below-L-with-remainder", "cfg"],
)
def test_likelihood_mean_matches_exact_expectation(mc_num, batch_size, cfg_scale):
    """Many independent estimates (one seed per pair) average to the enumerated expectation."""
    context, continuation, repeats = [2, 0], [1, 4, 3], 1500
    exact = exact_llada_score(TinyDenoiser(11), context, continuation, cfg_scale)
    scorer = LikelihoodScorer(mask_id=MASK_ID, mc_num=mc_num, batch_size=batch_size, cfg_scale=cfg_scale)
    estimates = torch.tensor(
        scorer.score_many(TinyDenoiser(11), [(context, continuation)] * repeats, generator=seeded(1)),
        dtype=torch.float64,
    )
    standard_error = estimates.std() / repeats**0.5
    assert estimates.std() > 0  # the estimator is random for L > 1 ...
    assert standard_error < 0.01 * abs(exact)  # ... and the test can still tell a bias apart
    assert abs(estimates.mean() - exact) < 4 * standard_error


def test_likelihood_single_token_is_exact_with_one_sample():
    context, true_token = [3, 3, 1], 0
    expected = reference_log_probs(TinyDenoiser(2), context + [MASK_ID], len(context), 0.0)[-1, true_token]
    denoiser = TinyDenoiser(2)
    got = LikelihoodScorer(mask_id=MASK_ID, mc_num=128).score(denoiser, context, [true_token], seeded())
    assert got == pytest.approx(expected.item(), abs=1e-5)
    assert [x.shape[0] for x in denoiser.inputs] == [1]  # one masking exists: one sample, not 128


@given(
    length=st.integers(1, 12),
    batch=st.integers(1, 64),
    seed=st.integers(0, 2**31),
)
def test_stratified_counts_cover_1_to_L_evenly(length, batch, seed):
    counts = stratified_mask_counts(length, batch, seeded(seed))
    assert counts.shape == (batch,)
    assert counts.min() >= 1 and counts.max() <= length
    frequency = torch.bincount(counts - 1, minlength=length)
    assert frequency.max() - frequency.min() <= 1
    if batch % length == 0:
        assert (frequency == batch // length).all()


def test_stratified_counts_are_uniform_marginally():
    """With fewer samples than counts the offset does the work: each count stays uniform."""
    draws = torch.cat([stratified_mask_counts(4, 1, seeded(s)) for s in range(4000)])
    frequency = torch.bincount(draws - 1, minlength=4).double() / 4000
    assert torch.allclose(frequency, torch.full((4,), 0.25, dtype=torch.float64), atol=0.03)


def test_likelihood_batches_are_stratified_and_mask_exactly_n():
    context, continuation = [4, 1], [0, 2, 3]
    denoiser = TinyDenoiser(4)
    LikelihoodScorer(mask_id=MASK_ID, mc_num=12, batch_size=6).score(
        denoiser, context, continuation, seeded()
    )
    assert [x.shape[0] for x in denoiser.inputs] == [6, 6]
    for x in denoiser.inputs:
        counts = (x[:, len(context) :] == MASK_ID).sum(dim=1)
        assert sorted(counts.tolist()) == [1, 1, 2, 2, 3, 3]
        unmasked = x[:, len(context) :] != MASK_ID
        assert (x[:, len(context) :][unmasked] == torch.tensor(continuation).expand(6, -1)[unmasked]).all()


# ------------------------------------------------------------------------- context and CFG


SCORERS = {
    # 6 samples in mini-batches of 4: the remainder of one pair shares a call with the next.
    "likelihood": lambda **kw: LikelihoodScorer(mask_id=MASK_ID, mc_num=6, batch_size=4, **kw),
    "confidence": lambda **kw: ConfidenceScorer(mask_id=MASK_ID, **kw),
}


@pytest.mark.parametrize("kind", sorted(SCORERS))
def test_context_is_never_masked(kind):
    context, continuation = [0, 1, 2, 3], [4, 0, 1]
    denoiser = TinyDenoiser(5)
    SCORERS[kind]().score(denoiser, context, continuation, seeded())
    for x in denoiser.inputs:
        assert (x[:, : len(context)] == torch.tensor(context)).all()
        assert (x[:, len(context) :] == MASK_ID).any(dim=1).all()


def replay_likelihood(inputs, context: list[int], continuation: list[int], cfg_scale: float) -> float:
    """The LLaDA estimate recomputed in float64 from the rows a scorer actually sent."""
    full, length, losses = context + continuation, len(continuation), []
    for x in inputs:
        for row in (x.chunk(2)[0] if cfg_scale else x).tolist():
            masked = [i for i, token in enumerate(row) if token == MASK_ID]
            log_probs = reference_log_probs(TinyDenoiser(6), row, len(context), cfg_scale)
            losses.append(sum(-log_probs[i, full[i]].item() for i in masked) * length / len(masked))
    return -sum(losses) / len(losses)


@pytest.mark.parametrize("kind", sorted(SCORERS))
def test_cfg_zero_is_the_plain_path_and_cfg_runs_the_context_masked_copy(kind):
    context, continuation = [0, 1, 2], [4, 0, 3]
    plain, guided = TinyDenoiser(6), TinyDenoiser(6)
    unguided = SCORERS[kind](cfg_scale=0.0).score(plain, context, continuation, seeded())
    with_cfg = SCORERS[kind](cfg_scale=1.5).score(guided, context, continuation, seeded())
    assert all(x.shape[0] in (1, 2, 4) for x in plain.inputs)  # never doubled
    assert len(guided.inputs) == len(plain.inputs)  # guidance doubles the batch, not the calls
    if kind == "likelihood":  # the same masks with and without guidance, under one seed
        for x, y in zip(plain.inputs, guided.inputs, strict=True):
            assert torch.equal(y.chunk(2)[0], x)
    for y in guided.inputs:
        cond, uncond = y.chunk(2)
        assert (cond[:, : len(context)] == torch.tensor(context)).all()
        assert (uncond[:, : len(context)] == MASK_ID).all()
        assert torch.equal(uncond[:, len(context) :], cond[:, len(context) :])
    if kind == "likelihood":
        assert unguided == pytest.approx(
            replay_likelihood(plain.inputs, context, continuation, 0.0), abs=1e-5
        )
        assert with_cfg == pytest.approx(
            replay_likelihood(guided.inputs, context, continuation, 1.5), abs=1e-5
        )
    else:
        for cfg_scale, value in ((0.0, unguided), (1.5, with_cfg)):
            expected = reference_confidence_score(TinyDenoiser(6), context, continuation, cfg_scale)[0]
            assert value == pytest.approx(expected, abs=1e-5)
    assert with_cfg != pytest.approx(unguided, abs=1e-3)


# ---------------------------------------------------------------------------- score_many


PAIRS = [
    ([1, 2], [3, 4, 0]),
    (torch.tensor([4, 4, 4]), torch.tensor([1, 2])),  # same total length, different split
    ([0], [1, 2, 3, 4]),
    ([2, 2], [0]),
    ([], [1, 3]),
    ([1, 2], [3, 4, 0]),  # a repeat: it still gets its own seed
]


@pytest.mark.parametrize("cfg_scale", [0.0, 0.5])
@pytest.mark.parametrize("kind", sorted(SCORERS))
def test_score_many_equals_score_per_pair(kind, cfg_scale):
    scorer = SCORERS[kind](cfg_scale=cfg_scale)
    batched, single = TinyDenoiser(7), TinyDenoiser(7)
    many = scorer.score_many(batched, PAIRS, generator=seeded(3))
    generator = seeded(3)
    one_by_one = [scorer.score(single, context, continuation, generator) for context, continuation in PAIRS]
    assert many == pytest.approx(one_by_one, abs=1e-5)
    assert len(batched.inputs) < len(single.inputs)  # pairs really did share denoiser calls
    if kind == "likelihood":
        assert many[0] != many[-1]  # identical pairs, independent draws


def test_score_many_without_generator_uses_the_global_rng():
    scorer = SCORERS["likelihood"]()
    torch.manual_seed(9)
    many = scorer.score_many(TinyDenoiser(8), PAIRS)
    torch.manual_seed(9)
    assert many == pytest.approx([scorer.score(TinyDenoiser(8), c, x) for c, x in PAIRS], abs=1e-5)


def test_likelihood_fills_forward_batches_across_pairs():
    """mc_num=1 (MMLU's setting): 8 equal-length candidates go through in 2 calls of 4 rows."""
    denoiser = TinyDenoiser(9)
    pairs = [([i % 5, 1], [2, 3]) for i in range(8)]
    LikelihoodScorer(mask_id=MASK_ID, mc_num=1, batch_size=4).score_many(denoiser, pairs, seeded())
    assert [x.shape[0] for x in denoiser.inputs] == [4, 4]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    context=st.lists(st.integers(0, 4), max_size=4),
    continuation=st.lists(st.integers(0, 4), min_size=1, max_size=4),
    cfg_scale=st.sampled_from([0.0, 0.5]),
)
def test_confidence_reveals_one_position_per_call(context, continuation, cfg_scale):
    denoiser = TinyDenoiser(10)
    score = ConfidenceScorer(mask_id=MASK_ID, cfg_scale=cfg_scale).score(denoiser, context, continuation)
    assert score <= 0
    conditional = [x[:1] for x in denoiser.inputs]
    assert [int((x == MASK_ID).sum()) for x in conditional] == list(range(len(continuation), 0, -1))
    for x in conditional:
        assert x[0, : len(context)].tolist() == context
        revealed = x[0, len(context) :] != MASK_ID
        assert (x[0, len(context) :][revealed] == torch.tensor(continuation)[revealed]).all()


# -------------------------------------------------------------------------------- ranking


@pytest.mark.parametrize("kind", sorted(SCORERS))
@pytest.mark.parametrize("first", [0, 3])
def test_preferred_continuation_ranks_above_a_distractor(kind, first):
    context = [first, 1]
    preferred = [(first + j) % 5 for j in range(2, 5)]
    distractor = [(token + 1) % 5 for token in preferred]
    scores = SCORERS[kind]().score_many(
        PreferringDenoiser(), [(context, preferred), (context, distractor)], seeded()
    )
    assert scores[0] > scores[1] + 10


# -------------------------------------------------------------------------------- configs


def test_scoring_configs_exist():
    assert {p.stem for p in SCORING_CONFIGS} == {"likelihood", "confidence"}


@pytest.mark.parametrize("path", SCORING_CONFIGS, ids=lambda p: p.stem)
def test_scoring_config_instantiates_and_scores(path):
    cfg = OmegaConf.load(path)
    with pytest.raises(MissingMandatoryValue):
        cfg.mask_id  # noqa: B018 - the caller must pass the tokenizer's mask id
    scorer = hydra.utils.instantiate(cfg, mask_id=MASK_ID)
    assert isinstance(scorer, Scorer) and scorer.mask_id == MASK_ID and scorer.cfg_scale == 0.0
    assert type(scorer).__name__.lower().startswith(path.stem)
    assert scorer.score(TinyDenoiser(0), [1, 2], [3, 4], seeded()) < 0


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("cls", "knobs", "error", "message"),
    [
        (LikelihoodScorer, {"mc_num": 0}, ValueError, "scoring.mc_num=0: must be >= 1"),
        (LikelihoodScorer, {"mc_num": 2.5}, TypeError, "scoring.mc_num=2.5: must be an integer"),
        (LikelihoodScorer, {"batch_size": 0}, ValueError, "scoring.batch_size=0: must be >= 1"),
        (ConfidenceScorer, {"batch_size": -3}, ValueError, "scoring.batch_size=-3: must be >= 1"),
        (ConfidenceScorer, {"cfg_scale": -0.5}, ValueError, "scoring.cfg_scale=-0.5: must be >= 0"),
        (LikelihoodScorer, {"cfg_scale": "big"}, TypeError, "scoring.cfg_scale='big': must be a number"),
        (ConfidenceScorer, {"mask_id": -1}, ValueError, "scoring.mask_id=-1: must be >= 0"),
        (LikelihoodScorer, {"mask_id": True}, TypeError, "scoring.mask_id=True: must be an integer"),
    ],
)
def test_validation_names_the_knob(cls, knobs, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(".", r"\.")):
        cls(**{"mask_id": MASK_ID} | knobs)


@pytest.mark.parametrize(
    ("context", "continuation", "message"),
    [
        ([1, MASK_ID], [2], r"pairs\[0\]\.context holds scoring\.mask_id=5 at position 1"),
        ([1], [2, MASK_ID], r"pairs\[0\]\.continuation holds scoring\.mask_id=5"),
        ([1], [], r"pairs\[0\]\.continuation is empty"),
        (torch.tensor([[1, 2]]), [3], r"pairs\[0\]\.context must be a 1-D integer tensor"),
        (torch.tensor([1.0]), [3], r"pairs\[0\]\.context must be a 1-D integer tensor"),
        ([1, -2], [3], r"pairs\[0\]\.context holds a negative id"),
    ],
)
@pytest.mark.parametrize("kind", sorted(SCORERS))
def test_bad_pairs_fail_before_any_denoiser_call(kind, context, continuation, message):
    denoiser = TinyDenoiser(0)
    with pytest.raises(ValueError, match=message):
        SCORERS[kind]().score(denoiser, context, continuation)
    assert denoiser.inputs == []


@pytest.mark.parametrize("kind", sorted(SCORERS))
def test_bad_denoiser_output_is_reported(kind):
    with pytest.raises(ValueError, match=r"denoiser must map ids \(\d+, 4\) to logits"):
        SCORERS[kind]().score(lambda x: torch.zeros(x.shape[0], VOCAB), [1, 2], [3, 4])


# ------------------------------------------------------------------------------------ GPU


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kind", sorted(SCORERS))
def test_scores_agree_across_devices(kind):
    """Masks are drawn on the CPU from per-pair seeds, so a seed scores the same on any device."""

    class OnDevice(TinyDenoiser):
        def __call__(self, x):
            return super().__call__(x.cpu()).to(x.device)

    scorer = SCORERS[kind](cfg_scale=0.5)
    cpu = scorer.score_many(OnDevice(1), PAIRS, seeded(2))
    cuda_pairs = [(torch.as_tensor(c).cuda(), torch.as_tensor(x).cuda()) for c, x in PAIRS]
    assert scorer.score_many(OnDevice(1), cuda_pairs, seeded(2)) == pytest.approx(cpu, abs=1e-5)
