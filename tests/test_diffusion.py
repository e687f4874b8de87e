"""Diffusion components: schedules, weighting, masking scopes and the objectives' losses."""

import math

import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from hypothesis import given, settings
from hypothesis import strategies as st

from lit_illada.config.paths import CONF_DIR
from lit_illada.core.model import ModelConfig, Transformer
from lit_illada.diffusion import (
    AllPositions,
    AutoregressiveObjective,
    CosineSchedule,
    DiffusionObjective,
    ElboWeighting,
    LinearSchedule,
    PerAnswerLength,
    PerToken,
    PolynomialSchedule,
    ResponseOnly,
    UnweightedLoss,
)

SCHEDULES = [LinearSchedule(), CosineSchedule(), PolynomialSchedule(exponent=2.0), PolynomialSchedule(exponent=0.5)]
MASK = 9


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: type(s).__name__)
def test_schedule_hits_end_points_and_is_monotone(schedule):
    t = torch.linspace(0, 1, 1001, dtype=torch.float64)
    p = schedule.mask_prob(t)
    assert p[0].item() == pytest.approx(0.0, abs=1e-12)
    assert p[-1].item() == pytest.approx(1.0, abs=1e-12)
    assert torch.all(p[1:] >= p[:-1])


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: type(s).__name__)
def test_rate_is_the_derivative_of_the_mask_probability(schedule):
    t = torch.linspace(0.05, 0.95, 19, dtype=torch.float64).requires_grad_()
    (grad,) = torch.autograd.grad(schedule.mask_prob(t).sum(), t)
    torch.testing.assert_close(schedule.mask_prob_rate(t.detach()), grad)


@given(st.floats(1e-3, 1.0))
def test_elbo_weight_is_one_over_t_for_linear(t):
    w = ElboWeighting()(torch.tensor([t], dtype=torch.float64), LinearSchedule())
    assert w.item() == pytest.approx(1.0 / t)


def test_unweighted_is_one():
    assert torch.equal(UnweightedLoss()(torch.rand(5), CosineSchedule()), torch.ones(5))


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 64), st.booleans(), st.floats(0.0, 0.5))
def test_sampled_t_stays_in_range(batch, stratified, eps):
    t = LinearSchedule(eps=eps, stratified=stratified).sample_t(batch, generator=torch.Generator().manual_seed(0))
    assert t.shape == (batch,)
    assert torch.all((t >= eps) & (t <= 1.0))


def test_stratified_t_covers_every_stratum():
    t = LinearSchedule(eps=0.0, stratified=True).sample_t(8, generator=torch.Generator().manual_seed(3))
    strata = sorted((t * 8).floor().long().tolist())
    assert strata == list(range(8))


def test_masking_scopes():
    ids = torch.arange(12).view(2, 6)
    prompt = torch.tensor([[1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    batch = {"input_ids": ids, "prompt_mask": prompt}
    assert AllPositions()(batch).all()
    assert torch.equal(ResponseOnly()(batch), ~prompt)
    with pytest.raises(ValueError, match="prompt_mask"):
        ResponseOnly()({"input_ids": ids})


class TableModel(torch.nn.Module):
    """Logits = a fixed table row per input token: simple enough to compute the loss by hand."""

    def __init__(self, vocab: int = 10) -> None:
        super().__init__()
        self.table = torch.nn.Parameter(torch.randn(vocab, vocab, generator=torch.Generator().manual_seed(0)))

    def forward(self, ids, causal=False, logits_at=None):
        logits = self.table[ids]
        return logits if logits_at is None else logits[logits_at]


def test_diffusion_loss_matches_a_hand_computed_example():
    model = TableModel()
    ids = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]])
    t = torch.tensor([0.5, 0.25])
    gen = torch.Generator().manual_seed(1)
    objective = DiffusionObjective(LinearSchedule(), ElboWeighting(), AllPositions(), mask_id=MASK, truncate_fraction=0)
    out = objective(model, {"input_ids": ids}, t=t, generator=gen)

    # The same draw the objective made: token masked iff u < p(t).
    u = torch.rand(2, 4, generator=torch.Generator().manual_seed(1))
    masked = u < t[:, None]
    log_probs = model.table[MASK].log_softmax(-1)  # every masked input reads the MASK row
    total = 0.0
    for b in range(2):
        for i in range(4):
            if masked[b, i]:
                total += -log_probs[ids[b, i]].item() / t[b].item()
    assert out.loss.item() == pytest.approx(total / 8, rel=1e-5)
    assert out.nll.item() == pytest.approx(total / 8, rel=1e-5)
    assert out.n_predicted == int(masked.sum())


def test_answer_length_normalization_divides_each_row_by_its_answer():
    model = TableModel()
    ids = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]])
    prompt = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 0]], dtype=torch.bool)
    objective = DiffusionObjective(
        LinearSchedule(), UnweightedLoss(), ResponseOnly(), mask_id=MASK, normalize=PerAnswerLength(),
        truncate_fraction=0,
    )
    out = objective(model, {"input_ids": ids, "prompt_mask": prompt}, t=torch.ones(2))  # t=1: mask every answer token
    ce = -model.table[MASK].log_softmax(-1)
    row0 = sum(ce[j].item() for j in (2, 3, 4)) / 3
    row1 = ce[8].item() / 1
    assert out.loss.item() == pytest.approx((row0 + row1) / 2, rel=1e-5)
    assert out.n_predicted == 4  # prompts never masked


def test_per_token_normalization_is_the_default():
    model, ids = TableModel(), torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]])
    prompt = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 0]], dtype=torch.bool)
    batch = {"input_ids": ids, "prompt_mask": prompt}
    components = (LinearSchedule(), UnweightedLoss(), ResponseOnly())
    outs = [
        DiffusionObjective(*components, mask_id=MASK, truncate_fraction=0, **kw)(model, batch, t=torch.ones(2))
        for kw in ({}, {"normalize": PerToken()})
    ]
    assert outs[0].loss.item() == outs[1].loss.item()
    ce = -model.table[MASK].log_softmax(-1)  # t=1: every answer token (ids 2, 3, 4 and 8) masked
    assert outs[0].loss.item() == pytest.approx(ce[[2, 3, 4, 8]].sum().item() / 4)


def test_logits_only_at_masked_positions_give_the_full_logits_loss():
    torch.manual_seed(0)
    model = Transformer(ModelConfig(vocab_size=16, n_layers=2, d_model=32, n_heads=4, ffn_hidden=64, max_seq_len=32))
    ids = torch.randint(0, 15, (4, 20))
    objective = DiffusionObjective(LinearSchedule(), ElboWeighting(), AllPositions(), mask_id=15, truncate_fraction=0)
    t = torch.tensor([0.2, 0.4, 0.6, 0.8])
    out = objective(model, {"input_ids": ids}, t=t, generator=torch.Generator().manual_seed(5))
    out.loss.backward()
    sparse_grad = model.wte.weight.grad.clone()
    model.zero_grad()

    masked = torch.rand(4, 20, generator=torch.Generator().manual_seed(5)) < t[:, None]
    full_logits = model(ids.masked_fill(masked, 15))  # (B, L, V) everywhere
    ce = F.cross_entropy(full_logits.transpose(1, 2), ids, reduction="none")
    dense = (ce * masked / t[:, None]).sum() / ids.numel()
    dense.backward()
    assert out.loss.item() == pytest.approx(dense.item(), rel=1e-5)
    torch.testing.assert_close(sparse_grad, model.wte.weight.grad)


def test_truncation_cuts_the_batch_in_the_configured_fraction():
    model = TableModel()
    ids = torch.randint(0, 9, (2, 64))
    objective = DiffusionObjective(LinearSchedule(), ElboWeighting(), AllPositions(), mask_id=MASK, truncate_fraction=1.0)
    lengths = {objective(model, {"input_ids": ids}).n_tokens // 2 for _ in range(30)}
    assert len(lengths) > 5 and max(lengths) <= 64 and min(lengths) >= 1
    never = DiffusionObjective(LinearSchedule(), ElboWeighting(), AllPositions(), mask_id=MASK, truncate_fraction=0.0)
    assert all(never(model, {"input_ids": ids}).n_tokens == 128 for _ in range(10))
    # validation never truncates
    assert objective(model, {"input_ids": ids}, training=False).n_tokens == 128


def test_padding_trim_keeps_every_answer_and_its_eos_and_cuts_only_padding():
    eos, model = 8, TableModel()
    # [BOS=7] prompt | answer EOS EOS ...: content ends at 5 (row 0) and 7 (row 1); row 2 was cut
    # by seq_len (no EOS after its prompt) in the second batch.
    ids = torch.tensor([[7, 1, 2, 3, 4, eos, eos, eos, eos, eos, eos, eos],
                        [7, 1, 2, 3, 4, 5, 6, eos, eos, eos, eos, eos]])
    prompt_mask = torch.zeros_like(ids, dtype=torch.bool)
    prompt_mask[:, :3] = True
    objective = DiffusionObjective(LinearSchedule(), ElboWeighting(), ResponseOnly(), mask_id=MASK,
                                   truncate_fraction=0.0, trim_padding_fraction=1.0, eos_id=eos)
    batch = {"input_ids": ids, "prompt_mask": prompt_mask}
    lengths = {objective(model, batch).n_tokens // 2 for _ in range(60)}
    assert lengths == set(range(8, 13))  # row 1's answer and first EOS (8 tokens) up to the whole row
    assert objective(model, batch, training=False).n_tokens == 24  # validation keeps the rows whole
    cut = torch.cat([ids, torch.tensor([[7, 1, 2, 3, 4, 5, 6, 5, 4, 3, 2, 1]])])
    uncut = {"input_ids": cut, "prompt_mask": torch.cat([prompt_mask, prompt_mask[:1]])}
    assert all(objective(model, uncut).n_tokens == 36 for _ in range(10))
    off = DiffusionObjective(LinearSchedule(), ElboWeighting(), ResponseOnly(), mask_id=MASK, truncate_fraction=0.0)
    assert all(off(model, batch).n_tokens == 24 for _ in range(10))
    with pytest.raises(ValueError, match="eos_id"):
        DiffusionObjective(LinearSchedule(), ElboWeighting(), ResponseOnly(), mask_id=MASK, trim_padding_fraction=0.5)


def test_autoregressive_loss_is_shifted_cross_entropy_with_a_causal_mask():
    torch.manual_seed(0)
    model = Transformer(ModelConfig(vocab_size=16, n_layers=2, d_model=32, n_heads=4, ffn_hidden=64, max_seq_len=32))
    ids = torch.randint(0, 15, (3, 12))
    out = AutoregressiveObjective(AllPositions(), mask_id=15, truncate_fraction=0)(model, {"input_ids": ids})
    logits = model(ids, causal=True)
    expected = F.cross_entropy(logits[:, :-1].reshape(-1, 16), ids[:, 1:].reshape(-1))
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert out.n_predicted == 3 * 11


def test_elbo_estimate_is_unbiased_for_a_context_free_model():
    """A model that ignores context has exact NLL = its unigram CE, and the ELBO is then tight."""
    model = TableModel()
    ids = torch.randint(0, 9, (64, 32), generator=torch.Generator().manual_seed(0))
    objective = DiffusionObjective(LinearSchedule(stratified=True), ElboWeighting(), AllPositions(), mask_id=MASK, truncate_fraction=0)
    bound = torch.stack([objective(model, {"input_ids": ids}).nll for _ in range(50)]).mean()
    exact = -model.table[MASK].log_softmax(-1)[ids].mean()
    # Every token is predicted from the MASK row whatever the mask pattern: E[bound] = exact.
    assert bound.item() == pytest.approx(exact.item(), rel=0.03)
    assert not math.isnan(bound.item())


@pytest.mark.parametrize(("kwargs", "key"), [({"normalize": "bogus"}, "objective.normalize"), ({"truncate_fraction": 2.0}, "objective.truncate_fraction")])
def test_bad_objective_options_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        DiffusionObjective(LinearSchedule(), ElboWeighting(), AllPositions(), mask_id=MASK, **kwargs)


@pytest.mark.parametrize(
    ("overrides", "normalization"),
    [
        ([], PerToken),
        (["stage=sft"], PerAnswerLength),
        (["stage=sft", "objective=autoregressive"], PerAnswerLength),
        (["experiment=illada_sft"], PerToken),
        (["stage=sft", "objective/normalize=tokens"], PerToken),
    ],
)
def test_normalization_is_a_config_group_of_the_objective(overrides, normalization):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    assert isinstance(instantiate(cfg.objective, mask_id=MASK).normalize, normalization)
