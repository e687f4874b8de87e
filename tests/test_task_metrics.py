"""The shared metrics (lit_illada.evaluation.metrics) and each embedded task's scoring.

Every expected value is worked out by hand in the comment next to it, never read back from the
code under test. Wilson values use z = 1.96 (z² = 3.8416) unless the default z is exercised.
"""

import math
from types import SimpleNamespace

import pytest
import torch

from lit_illada.data import StdlibFunctionSFTSource
from lit_illada.data.tokenizers import ByteTokenizer
from lit_illada.evaluation import metrics
from lit_illada.evaluation.metrics import (
    binomial_interval,
    edit_similarity,
    exact_match,
    levenshtein,
    mean_interval,
    normalize_answer,
    rate_with_interval,
    repetition_rate,
    t_quantile_975,
)
from lit_illada.evaluation.tasks import (
    DocstringToBody,
    EvalModel,
    Infill,
    MCNextLine,
    docstring_to_body,
    infill,
    mc_nextline,
)

approx = pytest.approx


# ----------------------------------------------------------------------------- normalize_answer


def test_normalize_answer_strips_and_cuts_at_eos():
    assert normalize_answer("  return x\n") == "return x"
    assert normalize_answer("return x<eos>junk", eos_text="<eos>") == "return x"
    assert normalize_answer("  a <eos> b <eos> c", eos_text="<eos>") == "a"  # first EOS, then strip
    assert normalize_answer("a<eos>b") == "a<eos>b"  # no marker given: kept
    assert normalize_answer("\n \t\n") == ""
    assert normalize_answer("<eos>tail", eos_text="<eos>") == ""
    assert normalize_answer("    x = 1\n    return x\n") == "x = 1\n    return x"  # inner indentation kept


# ----------------------------------------------------------------------------- exact_match


def test_exact_match_perfect_empty_wrong_partial():
    assert exact_match("  return x\n", "return x") == 1.0  # perfect up to surrounding whitespace
    assert exact_match("", "return x") == 0.0  # empty
    assert exact_match("return y", "return x") == 0.0  # wrong
    assert exact_match("return", "return x") == 0.0  # partly right: no partial credit
    assert exact_match("", "  ") == 1.0  # both empty after stripping


# ----------------------------------------------------------------------------- edit distance / similarity


def test_levenshtein_by_hand():
    assert levenshtein("kitten", "sitting") == 3  # k->s, e->i, insert g
    assert levenshtein("flaw", "lawn") == 2  # delete f, insert n
    assert levenshtein("", "abc") == 3 and levenshtein("abc", "") == 3  # 3 insertions / deletions
    assert levenshtein("abc", "abc") == 0
    assert levenshtein("abcdef", "azced") == 3  # b->z, delete d, f->d (no common subsequence of 4)
    assert levenshtein([1, 2, 3], [1, 3]) == 1  # any sequences: delete 2


def test_edit_similarity_perfect_empty_wrong_partial():
    reference = "return x + 1"  # 12 characters
    assert edit_similarity(reference, reference) == 1.0  # distance 0: 1 - 0/12
    assert edit_similarity("", reference) == 0.0  # 12 insertions: 1 - 12/12
    assert edit_similarity(reference, "") == 0.0  # symmetric
    assert edit_similarity("", "") == 1.0  # both empty: defined as identical
    assert edit_similarity("0", reference) == 0.0  # no shared character: 1 sub + 11 ins = 12 -> 1 - 12/12
    assert edit_similarity("return x - 1", reference) == approx(11 / 12)  # one substitution: 1 - 1/12
    assert edit_similarity("kitten", "sitting") == approx(4 / 7)  # 1 - 3/7


def test_edit_similarity_uses_the_full_reference():
    """The old scoring cut the reference to the prediction's length: a prefix scored 1.0."""
    assert edit_similarity("return", "return x + 1") == approx(0.5)  # 6 insertions: 1 - 6/12
    assert edit_similarity("", "return x + 1") == 0.0  # was 1.0: "" against reference[:0] == ""


# ----------------------------------------------------------------------------- Wilson interval


def test_wilson_interval_by_hand():
    # 0/10: centre = half = (z²/2n)/(1+z²/n), so high = z²/(n+z²) = 3.8416/13.8416 = 0.277540
    assert binomial_interval(0, 10, z=1.96) == (0.0, approx(0.277540, abs=1e-5))
    # 10/10: mirror image, low = n/(n+z²) = 10/13.8416 = 0.722460
    assert binomial_interval(10, 10, z=1.96) == (approx(0.722460, abs=1e-5), 1.0)
    # 5/10: centre = (0.5 + 0.19208)/1.38416 = 0.5;
    # half = (1.96/1.38416)·sqrt(0.25/10 + 3.8416/400) = 1.416022·sqrt(0.034604)
    #      = 1.416022·0.186022 = 0.263410
    low, high = binomial_interval(5, 10, z=1.96)
    assert (low, high) == (approx(0.236590, abs=1e-5), approx(0.763410, abs=1e-5))
    # 1/2: centre 0.5; half = (1.96/2.9208)·sqrt(0.125 + 3.8416/16) = 0.671049·0.604235 = 0.405471
    assert binomial_interval(1, 2, z=1.96) == (approx(0.094529, abs=1e-5), approx(0.905471, abs=1e-5))


def test_wilson_interval_default_is_95_percent_and_stays_in_the_unit_interval():
    # The default z is 1.959964 (not 1.96): the same values to 1e-4.
    assert binomial_interval(0, 10) == (0.0, approx(0.277540, abs=1e-4))
    assert binomial_interval(5, 10) == (approx(0.236590, abs=1e-4), approx(0.763410, abs=1e-4))
    assert binomial_interval(10, 10) == (approx(0.722460, abs=1e-4), 1.0)
    for n in (1, 2, 3, 7, 50):
        for k in range(n + 1):
            low, high = binomial_interval(k, n)
            assert 0.0 <= low <= k / n <= high <= 1.0
    # Wald (p ± z·sqrt(p(1-p)/n)) would give the single point 0 at 0/10; Wilson does not.
    assert binomial_interval(0, 10)[1] > 0.2


def test_wilson_interval_refuses_bad_counts():
    with pytest.raises(ValueError, match="n=0"):
        binomial_interval(0, 0)
    with pytest.raises(ValueError, match="successes=11"):
        binomial_interval(11, 10)
    with pytest.raises(ValueError, match="successes=-1"):
        binomial_interval(-1, 10)


def test_rate_with_interval_names_its_keys():
    rate = rate_with_interval("accuracy", 5, 10)
    assert rate.keys() == {"accuracy", "accuracy_low", "accuracy_high"}
    assert rate["accuracy"] == 0.5  # 5/10
    assert rate["accuracy_low"] == approx(0.236590, abs=1e-4)
    assert rate["accuracy_high"] == approx(0.763410, abs=1e-4)


# ----------------------------------------------------------------------------- t interval


def test_t_quantiles_match_printed_tables():
    # Student's t, two-sided 95% (any printed table): df 1 -> 12.706, 2 -> 4.303, 10 -> 2.228, 30 -> 2.042,
    # 60 -> 2.000, 120 -> 1.980; the normal limit 1.960.
    for df, value in ((1, 12.706), (2, 4.303), (10, 2.228), (30, 2.042), (60, 2.000), (120, 1.980)):
        assert t_quantile_975(df) == approx(value, abs=1e-3)
    assert t_quantile_975(100_000) == approx(1.960, abs=1e-3)
    quantiles = [t_quantile_975(df) for df in range(1, 200)]
    # decreasing, also across the end of the table (df 30 -> 31)
    assert all(a > b for a, b in zip(quantiles, quantiles[1:], strict=False))


def test_t_quantiles_agree_with_scipy_where_installed():
    stats = pytest.importorskip("scipy.stats")
    for df in (*range(1, 40), 50, 100, 1000):
        assert t_quantile_975(df) == approx(stats.t.ppf(0.975, df), abs=1e-6)


def test_mean_interval_by_hand():
    # [1, 2, 3]: mean 2; s² = (1 + 0 + 1)/2 = 1; se = 1/sqrt(3) = 0.577350;
    # t(0.975, 2) = 4.302653; half = 4.302653·0.577350 = 2.484138
    assert mean_interval([1, 2, 3]) == (2.0, approx(-0.484138, abs=1e-5), approx(4.484138, abs=1e-5))
    # identical values: s = 0, zero width
    assert mean_interval([0.5, 0.5, 0.5]) == (0.5, 0.5, 0.5)
    # [0, 1]: mean 0.5; s = sqrt(0.5); se = sqrt(0.5)/sqrt(2) = 0.5; half = 12.706205·0.5 = 6.353102
    assert mean_interval([0, 1]) == (0.5, approx(-5.853102, abs=1e-5), approx(6.853102, abs=1e-5))
    # 40 values, alternating 0, 1: mean 0.5; s² = 40·0.25/39 = 0.256410, s = 0.506370;
    # se = 0.506370/sqrt(40) = 0.080064; t(0.975, 39) = 2.022691; half = 0.161945
    mean, low, high = mean_interval([0, 1] * 20)
    assert (mean, low, high) == (0.5, approx(0.338055, abs=1e-5), approx(0.661945, abs=1e-5))


def test_mean_interval_of_one_or_no_value():
    mean, low, high = mean_interval([0.7])
    assert mean == 0.7 and math.isnan(low) and math.isnan(high)  # one seed: no spread to estimate
    with pytest.raises(ValueError, match="no values"):
        mean_interval([])


def test_clip_to_unit():
    assert metrics.clip_to_unit(-0.4) == 0.0 and metrics.clip_to_unit(1.3) == 1.0
    assert metrics.clip_to_unit(0.25) == 0.25 and metrics.clip_to_unit(math.nan) is None


# ----------------------------------------------------------------------------- repetition_rate


def test_repetition_rate_by_hand():
    assert repetition_rate([1, 2, 3, 4, 5], n=2) == 0.0  # 4 bigrams, 4 distinct: 1 - 4/4
    assert repetition_rate([], n=2) == 0.0  # no n-gram
    assert repetition_rate([1], n=2) == 0.0  # fewer items than n: no n-gram
    assert repetition_rate([7, 7, 7, 7, 7], n=2) == approx(0.75)  # 4 bigrams, all (7, 7): 1 - 1/4
    assert repetition_rate([1, 2, 1, 2, 1, 2], n=2) == approx(0.6)  # 5 bigrams, {(1,2), (2,1)}: 1 - 2/5
    # default n = 4: [1,2,3]x3 has 6 four-grams, 3 distinct: 1 - 3/6
    assert repetition_rate([1, 2, 3, 1, 2, 3, 1, 2, 3]) == approx(0.5)


def test_repetition_rate_of_text_counts_words():
    assert repetition_rate("a b a b", n=1) == approx(0.5)  # 4 words, 2 distinct: 1 - 2/4
    assert repetition_rate("return x", n=4) == 0.0  # 2 words < 4
    assert repetition_rate("x = 1\nx = 1", n=3) == approx(0.25)  # words x = 1 x = 1: 4 trigrams, 3 distinct
    with pytest.raises(ValueError, match="n=0"):
        repetition_rate("a", n=0)


# ----------------------------------------------------------------------------- docstring_to_body

PROMPT = 'def f(x):\n    """Add one."""\n'
REFERENCE = "    return x + 1\n"  # normalised: "return x + 1", 12 characters


def test_docstring_to_body_perfect_answer():
    assert docstring_to_body.score_example(PROMPT, REFERENCE, REFERENCE) == {
        "exact_match": 1.0, "edit_similarity": 1.0, "parses": 1.0, "empty": 0.0,
    }


def test_docstring_to_body_empty_answer_scores_zero_similarity():
    """The regression: "" was compared with reference[:0] == "" and scored edit_similarity 1.0."""
    for empty in ("", "\n", "   \n\t\n"):  # whitespace only is empty after normalisation
        assert docstring_to_body.score_example(PROMPT, empty, REFERENCE) == {
            "exact_match": 0.0, "edit_similarity": 0.0, "parses": 0.0, "empty": 1.0,
        }


def test_docstring_to_body_wrong_answer():
    # "0" against "return x + 1": no character in common, 12 edits -> 1 - 12/12; it still parses.
    assert docstring_to_body.score_example(PROMPT, "    0\n", REFERENCE) == {
        "exact_match": 0.0, "edit_similarity": 0.0, "parses": 1.0, "empty": 0.0,
    }


def test_docstring_to_body_partly_right_answer():
    # one substitution (+ -> -): 1 - 1/12
    score = docstring_to_body.score_example(PROMPT, "    return x - 1\n", REFERENCE)
    assert score == {"exact_match": 0.0, "edit_similarity": approx(11 / 12), "parses": 1.0, "empty": 0.0}
    # a prefix of the reference: 6 missing characters, 1 - 6/12 (the old truncation scored it 1.0)
    score = docstring_to_body.score_example(PROMPT, "    return", REFERENCE)
    assert score == {"exact_match": 0.0, "edit_similarity": approx(0.5), "parses": 1.0, "empty": 0.0}


def test_docstring_to_body_summary_by_hand():
    scores = [
        docstring_to_body.score_example(PROMPT, completion, REFERENCE)
        for completion in (REFERENCE, "", "    0\n", "    return x - 1\n")  # perfect, empty, wrong, partly
    ]
    summary = docstring_to_body.summarize(scores)
    # exact 1/4: p = 0.25, n = 4, z²/n = 0.9604; centre = (0.25 + 0.4802)/1.9604 = 0.372475;
    # half = (1.96/1.9604)·sqrt(0.1875/4 + 3.8416/64) = 0.999796·sqrt(0.1069) = 0.326889
    assert summary["exact_match"] == 0.25
    assert summary["exact_match_low"] == approx(0.045586, abs=1e-4)
    assert summary["exact_match_high"] == approx(0.699364, abs=1e-4)
    # parses: perfect, wrong and partly (3/4); the empty answer does not
    assert summary["parse_rate"] == 0.75
    assert summary["parse_rate_low"] == approx(1 - 0.699364, abs=1e-4)  # mirror of 1/4
    assert summary["parse_rate_high"] == approx(1 - 0.045586, abs=1e-4)
    # (1 + 0 + 0 + 11/12)/4 = 23/48
    assert summary["edit_similarity"] == approx(23 / 48)
    # s² = (Σx² - n·mean²)/3 = (265/144 - 529/576)/3 = 0.307292; half = 3.182446·sqrt(0.307292)/2 = 0.882085:
    # (-0.40, 1.36), clipped to the metric's range
    assert (summary["edit_similarity_low"], summary["edit_similarity_high"]) == (0.0, 1.0)
    assert summary["empty_rate"] == 0.25


def test_docstring_to_body_summary_interval_of_close_scores():
    scores = [
        {"exact_match": 0.0, "edit_similarity": s, "parses": 1.0, "empty": 0.0} for s in (0.4, 0.5, 0.6)
    ]
    summary = docstring_to_body.summarize(scores)
    # mean 0.5; s = 0.1; half = 4.302653·0.1/sqrt(3) = 0.248414
    assert summary["edit_similarity"] == approx(0.5)
    assert summary["edit_similarity_low"] == approx(0.251586, abs=1e-5)
    assert summary["edit_similarity_high"] == approx(0.748414, abs=1e-5)
    assert summary["exact_match_low"] == 0.0 and summary["parse_rate_high"] == 1.0


def test_docstring_to_body_summary_of_one_example_has_no_similarity_interval():
    summary = docstring_to_body.summarize([docstring_to_body.score_example(PROMPT, REFERENCE, REFERENCE)])
    assert summary["edit_similarity"] == 1.0
    assert summary["edit_similarity_low"] is None and summary["edit_similarity_high"] is None
    # 1/1: low = n/(n+z²) = 1/4.8416 = 0.206543
    assert summary["exact_match_low"] == approx(0.206543, abs=1e-4) and summary["exact_match_high"] == 1.0


# ----------------------------------------------------------------------------- infill


def test_infill_scores_by_hand():
    reference = [5, 6, 7, 8]
    def score(prediction):
        return infill.score_example(prediction, reference)

    assert score([5, 6, 7, 8]) == {"token_accuracy": 1.0, "exact_span": 1.0}  # perfect: 4/4
    assert score([]) == {"token_accuracy": 0.0, "exact_span": 0.0}  # empty: 0/4
    assert score([1, 1, 1, 1]) == {"token_accuracy": 0.0, "exact_span": 0.0}  # wrong: 0/4
    assert score([5, 6, 0, 8]) == {"token_accuracy": 0.75, "exact_span": 0.0}  # partly: 3/4
    assert score([5, 6]) == {"token_accuracy": 0.5, "exact_span": 0.0}  # 2 missing count wrong: 2/4
    with pytest.raises(ValueError, match="empty reference"):
        infill.score_example([1], [])


def test_infill_summary_by_hand():
    reference = [5, 6, 7, 8]
    scores = [infill.score_example(p, reference) for p in ([5, 6, 7, 8], [], [1, 1, 1, 1], [5, 6, 0, 8])]
    summary = infill.summarize(scores, span=4)
    # token accuracy (1 + 0 + 0 + 0.75)/4 = 0.4375, Wilson over n = 4 windows with 1.75 successes:
    # centre = (0.4375 + 0.4802)/1.9604 = 0.468119; half = 0.999796·sqrt(0.4375·0.5625/4 + 0.060025)
    # = 0.999796·sqrt(0.121548) = 0.348566
    assert summary["token_accuracy"] == approx(0.4375)
    assert summary["token_accuracy_low"] == approx(0.119553, abs=1e-4)
    assert summary["token_accuracy_high"] == approx(0.816685, abs=1e-4)
    # exact span 1/4: as exact_match 1/4 above
    assert summary["exact_span"] == 0.25
    assert summary["exact_span_low"] == approx(0.045586, abs=1e-4)
    assert summary["exact_span_high"] == approx(0.699364, abs=1e-4)
    assert summary["n"] == 4 and summary["n_tokens"] == 16  # 4 windows x 4 tokens


# ----------------------------------------------------------------------------- mc_nextline


def test_mc_nextline_scores_by_hand():
    scores = [-1.0, -3.0, -2.0, -4.0]  # option 0 is the model's unique pick
    assert mc_nextline.score_example(scores, 0) == 1.0  # perfect
    assert mc_nextline.score_example(scores, 1) == 0.0  # wrong
    assert mc_nextline.score_example([math.nan] * 4, 0) == 0.0  # empty: no valid score, no pick
    assert mc_nextline.score_example([-1.0, -1.0, -2.0, -3.0], 0) == 0.5  # partly: tied with one other, 1/2
    assert mc_nextline.score_example([-1.0, -1.0, -2.0, -3.0], 2) == 0.0
    assert mc_nextline.score_example([0.0] * 4, 3) == 0.25  # all tied: 1/4, chance, whatever the position
    assert mc_nextline.score_example([math.nan, -2.0, -1.0, -3.0], 2) == 1.0  # nan is never picked
    assert mc_nextline.score_example([math.nan, -2.0, -1.0, -3.0], 0) == 0.0
    assert mc_nextline.score_example(torch.tensor([0.1, 0.9]), 1) == 1.0  # tensors work too
    with pytest.raises(ValueError, match="answer 4"):
        mc_nextline.score_example(scores, 4)


def test_mc_nextline_summary_by_hand():
    summary = mc_nextline.summarize([1.0] * 5 + [0.0] * 5, choices=4)
    # 5/10 as above: (0.236590, 0.763410)
    assert summary["accuracy"] == 0.5 and summary["n"] == 10 and summary["chance"] == 0.25  # 1/4
    assert summary["accuracy_low"] == approx(0.236590, abs=1e-4)
    assert summary["accuracy_high"] == approx(0.763410, abs=1e-4)
    summary = mc_nextline.summarize([1.0, 0.0, 0.5, 0.0], choices=4)
    # 1.5/4 = 0.375: centre = (0.375 + 0.4802)/1.9604 = 0.436238;
    # half = 0.999796·sqrt(0.375·0.625/4 + 0.060025) = 0.999796·0.344411 = 0.344341
    assert summary["accuracy"] == 0.375
    assert summary["accuracy_low"] == approx(0.091897, abs=1e-4)
    assert summary["accuracy_high"] == approx(0.780578, abs=1e-4)


# ----------------------------------------------------------------------------- run(), no trained model
# A stand-in network and decoding that give known answers: nothing to learn, only the plumbing
# from generations to metric keys. Wilson values at n = 4: 0/4 -> high = z²/(4 + z²) = 0.489900;
# 4/4 -> low = 4/(4 + z²) = 0.510100; 1/4 -> (0.045586, 0.699364) as above.


class StubNet(torch.nn.Module):
    """Logits with a 1 on ``answers`` (one id per input position), else on byte 0 everywhere."""

    def __init__(self, max_seq_len: int, answers: torch.Tensor | None = None) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.config = SimpleNamespace(max_seq_len=max_seq_len)
        self.answers = answers

    def forward(self, ids: torch.Tensor, causal: bool = False) -> torch.Tensor:
        answers = self.answers if self.answers is not None else torch.zeros_like(ids)
        return torch.zeros(*ids.shape, ByteTokenizer.vocab_size).scatter_(-1, answers.unsqueeze(-1), 1.0)


def stub_model(net: torch.nn.Module, generate=None, scorer=None, gen_length: int = 50_000) -> EvalModel:
    decoding = SimpleNamespace(causal=False, can_infill=True, kind="diffusion",
                               generate=lambda _net, prompt, _sampler, _generator: generate(prompt))
    sampler = SimpleNamespace(gen_length=gen_length)
    return EvalModel(net, ByteTokenizer(), decoding, sampler, scorer, add_bos=False)


def generation(ids: list[int]) -> SimpleNamespace:
    return SimpleNamespace(generated=torch.tensor([ids]), nfe=3, seconds=0.5, generated_tokens=len(ids))


KEYS = {
    "docstring_to_body": {
        "exact_match", "exact_match_low", "exact_match_high",
        "parse_rate", "parse_rate_low", "parse_rate_high",
        "edit_similarity", "edit_similarity_low", "edit_similarity_high",
        "empty_rate", "repetition_rate", "reference_fits_rate",
        "nfe", "seconds_per_sample", "tokens_per_s", "n",
    },
    "infill": {
        "token_accuracy", "token_accuracy_low", "token_accuracy_high", "exact_span", "exact_span_low",
        "exact_span_high", "n", "n_tokens", "span", "nfe",
    },
    "mc_nextline": {"accuracy", "accuracy_low", "accuracy_high", "n", "chance"},
}


def test_docstring_to_body_run_with_empty_generations_scores_zero():
    tokenizer = ByteTokenizer()
    model = stub_model(StubNet(100_000), generate=lambda prompt: generation([tokenizer.eos_id, 65, 66]))
    metrics_ = DocstringToBody(limit=4).run(model)
    assert metrics_.keys() == KEYS["docstring_to_body"]
    assert metrics_["n"] == 4
    assert metrics_["edit_similarity"] == 0.0  # was 1.0 with the reference cut to the completion's length
    assert metrics_["exact_match"] == 0.0 and metrics_["parse_rate"] == 0.0 and metrics_["empty_rate"] == 1.0
    assert metrics_["exact_match_low"] == 0.0 and metrics_["exact_match_high"] == approx(0.489900, abs=1e-4)
    assert metrics_["repetition_rate"] == 0.0  # no generated token before EOS
    assert metrics_["reference_fits_rate"] == 1.0  # gen_length 50 000 bytes holds every reference
    assert metrics_["nfe"] == 3 and metrics_["seconds_per_sample"] == 0.5


def test_docstring_to_body_run_with_the_reference_scores_one():
    tokenizer = ByteTokenizer()
    references = {e.prompt: e.response for e in StdlibFunctionSFTSource().examples("test")}

    def perfect(prompt: torch.Tensor) -> SimpleNamespace:
        return generation([*tokenizer.encode(references[tokenizer.decode(prompt[0])]), tokenizer.eos_id])

    metrics_ = DocstringToBody(limit=4).run(stub_model(StubNet(100_000), generate=perfect))
    assert metrics_["n"] == 4 and metrics_["exact_match"] == 1.0 and metrics_["edit_similarity"] == 1.0
    assert metrics_["exact_match_low"] == approx(0.510100, abs=1e-4) and metrics_["exact_match_high"] == 1.0
    assert metrics_["parse_rate"] == 1.0 and metrics_["empty_rate"] == 0.0
    assert (metrics_["edit_similarity_low"], metrics_["edit_similarity_high"]) == (1.0, 1.0)  # no spread
    assert 0.0 <= metrics_["repetition_rate"] < 1.0


def test_docstring_to_body_run_reports_references_longer_than_the_budget():
    tokenizer = ByteTokenizer()
    model = stub_model(StubNet(100_000), generate=lambda prompt: generation([tokenizer.eos_id]), gen_length=1)
    assert DocstringToBody(limit=4).run(model)["reference_fits_rate"] == 0.0  # no body fits in 1 byte


def test_infill_run_scores_known_predictions():
    task = Infill(limit=4, side=8, span=4)
    wrong = stub_model(StubNet(10_000))  # every position gets byte 0 (NUL), never in source text
    metrics_ = task.run(wrong)
    assert metrics_.keys() == KEYS["infill"]
    assert metrics_["token_accuracy"] == 0.0 and metrics_["exact_span"] == 0.0
    assert metrics_["token_accuracy_high"] == approx(0.489900, abs=1e-4)  # 0/4 windows, not 0/16 tokens
    assert (metrics_["n"], metrics_["n_tokens"], metrics_["span"], metrics_["nfe"]) == (4, 16, 4, 4)
    truth = task.windows(wrong)
    metrics_ = task.run(stub_model(StubNet(10_000, answers=truth)))  # logits peaked on the true ids
    assert metrics_["token_accuracy"] == 1.0 and metrics_["exact_span"] == 1.0
    assert metrics_["token_accuracy_low"] == approx(0.510100, abs=1e-4)


def test_mc_nextline_run_scores_known_scorers():
    task = MCNextLine(limit=4)
    tokenizer = ByteTokenizer()
    constant = SimpleNamespace(score_many=lambda denoiser, pairs, generator=None: [0.0] * len(pairs))
    metrics_ = task.run(stub_model(StubNet(10_000), scorer=constant))
    assert metrics_.keys() == KEYS["mc_nextline"]
    # every question a 4-way tie: 1/4 credit each, so 1/4 whatever position the answer sits in
    assert metrics_["accuracy"] == 0.25 and metrics_["n"] == 4 and metrics_["chance"] == 0.25
    assert metrics_["accuracy_low"] == approx(0.045586, abs=1e-4)
    assert metrics_["accuracy_high"] == approx(0.699364, abs=1e-4)
    right = {(tuple(tokenizer.encode(c)), tuple(tokenizer.encode(o[a]))) for c, o, a in task.examples()}
    oracle = SimpleNamespace(score_many=lambda denoiser, pairs, generator=None: [
        float((tuple(context), tuple(option)) in right) for context, option in pairs
    ])
    metrics_ = task.run(stub_model(StubNet(10_000), scorer=oracle))
    assert metrics_["accuracy"] == 1.0 and metrics_["accuracy_low"] == approx(0.510100, abs=1e-4)
