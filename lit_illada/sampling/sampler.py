"""The blockwise masked-diffusion sampling loop (LLaDA's ``generate``) and its hooks.

A policy is three decisions, each a knob or a hook that a small subclass overrides:

* ``score`` (a component, see ``scores``): how sure the model is about each predicted token
  (probability of the prediction, top-2 margin, negative entropy, a uniform draw);
* ``decode_block`` (hook): how many and which positions to commit per step. The confidence
  sampler follows LLaDA's fixed schedule; threshold, factor and EB rules loop until the
  block is full;
* ``decode`` (hook): how the answer is laid out. Here ``gen_length`` masks in fixed blocks;
  variable-length generation appends blocks until EOS.

Everything else (guidance, logit constraints, Gumbel-max prediction, which positions may
win, bookkeeping, the KV-cache component and its hook) lives here once, so that every policy
matches the reference wherever it does not deliberately differ from it.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from lit_illada.sampling.cache import DenoiserCache, NoCache
from lit_illada.sampling.constraints import Constraint, NoRepeatNGram, SuppressToken
from lit_illada.sampling.result import SampleResult
from lit_illada.sampling.scores import Probability, Score

Denoiser = Callable[[torch.Tensor], torch.Tensor]
"""Any callable from ids ``(B, L)`` to logits ``(B, L, V)``: a model, an HF wrapper, a stub.

It may also have ``start_block(start, end)``, which the sampler calls before the first
denoiser call of every block (a KV cache refreshes there).
"""


def gumbel_max_tokens(
    logits: torch.Tensor, temperature: float, generator: torch.Generator | None
) -> torch.Tensor:
    """Predicted token per position: argmax at temperature 0, Gumbel-max otherwise.

    The noisy form ``exp(logits) / (-log u) ** T`` in float64 is the reference's; float64
    matters because low-precision Gumbel noise visibly changes samples. At temperature 0 no
    random number is drawn, so the generator is left untouched.
    """
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.to(torch.float64)
    noise = torch.rand(logits.shape, dtype=torch.float64, generator=generator, device=logits.device)
    return (logits.exp() / (-torch.log(noise)) ** temperature).argmax(dim=-1)


@dataclass
class SamplingRun:
    """Mutable state of one ``generate`` call, kept off the sampler so that it is reentrant."""

    x: torch.Tensor
    prompt_length: int
    denoiser: Denoiser
    generator: torch.Generator | None
    nfe: int = 0
    committed_per_step: list[int] = field(default_factory=list)


@dataclass
class Proposal:
    """What one denoiser call suggests; the commit rule decides which part to accept.

    Attributes:
        tokens: ``(B, L)`` predicted tokens at masked positions, the current ones elsewhere.
        confidence: ``(B, L)`` score; ``-inf`` where the position cannot be committed.
        candidates: ``(B, L)`` positions that can be committed (masked, before the block end).
        logits: ``(B, L, V)`` guided, constrained logits the prediction came from (the EB
            rule needs the whole distribution).
    """

    tokens: torch.Tensor
    confidence: torch.Tensor
    candidates: torch.Tensor
    logits: torch.Tensor


class Sampler(ABC):
    """Iterative unmasking of an answer after a prompt, one block at a time.

    Args:
        gen_length: positions generated after the prompt (the maximum, for variable length).
        block_length: generation proceeds left to right in blocks of this size; only the
            current block (and any still-masked position before it) can be committed.
        mask_id: id of the [MASK] token. Must not occur in prompts.
        temperature: 0 for greedy argmax; > 0 for Gumbel-max sampling at that temperature.
        cfg_scale: classifier-free guidance strength; 0 turns guidance off.
        score: how positions are ranked: a ``scores.Score`` (or any callable
            ``(logits, x0, generator) -> (B, L)``); default ``Probability()``.
        eos_id: id of the end-of-sequence token; needed by ``suppress_eos`` and by
            variable-length generation, optional otherwise.
        suppress_eos: forbid EOS everywhere (its logit is ``-inf`` before the prediction and
            every softmax), so the answer fills ``gen_length``.
        no_repeat_ngram: ``n > 0`` bans a token wherever it would complete an n-gram that
            the answer already contains (see ``constraints.NoRepeatNGram``); 0 is off.
        cache: a ``cache.DenoiserCache`` that wraps the denoiser for the whole call:
            ``NoCache()`` (the default) or an approximate KV cache (``PrefixCache()``,
            ``DualCache()``).

    The step count is a knob of the fixed schedule only (``ConfidenceSampler.steps``);
    adaptive policies take as many steps as the data needs.

    The denoiser is expected never to predict ``mask_id`` (a trained model does not); if
    it does, the position stays masked exactly as in the reference sampler.
    """

    KNOBS: tuple[str, ...] = (
        "gen_length", "block_length", "temperature", "cfg_scale", "mask_id",
        "score", "eos_id", "suppress_eos", "no_repeat_ngram", "cache",
    )  # fmt: skip
    """Constructor arguments shown by ``repr``; subclasses append their own."""

    def __init__(
        self,
        *,
        gen_length: int,
        block_length: int,
        mask_id: int,
        temperature: float = 0.0,
        cfg_scale: float = 0.0,
        score: Score | None = None,
        eos_id: int | None = None,
        suppress_eos: bool = False,
        no_repeat_ngram: int = 0,
        cache: DenoiserCache | None = None,
    ) -> None:
        score = Probability() if score is None else score
        cache = NoCache() if cache is None else cache
        for name, value in (("gen_length", gen_length), ("block_length", block_length)):
            require_int(name, value, minimum=1)
        require_int("mask_id", mask_id, minimum=0)
        require_int("no_repeat_ngram", no_repeat_ngram, minimum=0)
        require_number("temperature", temperature, minimum=0, why="0 is greedy")
        require_number("cfg_scale", cfg_scale, minimum=0, why="0 turns CFG off")
        require_component(
            "score",
            score,
            callable(score),
            "a score such as scores.Probability(); on the command line "
            "sampler/score=probability|margin|entropy|random",
        )
        require_component(
            "cache",
            cache,
            callable(getattr(cache, "wrap", None)),
            "a cache such as cache.PrefixCache(); on the command line sampler/cache=none|prefix|dual",
        )
        if not isinstance(suppress_eos, bool):
            raise TypeError(f"sampler.suppress_eos must be true or false; got {suppress_eos!r}")
        if eos_id is not None:
            require_int("eos_id", eos_id, minimum=0)
            if eos_id == mask_id:
                raise ValueError(f"sampler.eos_id={eos_id} equals sampler.mask_id; they must differ")
        if suppress_eos and eos_id is None:
            raise ValueError("sampler.suppress_eos=true needs sampler.eos_id (it is null); pass the EOS id")
        if gen_length % block_length != 0:
            raise ValueError(
                f"sampler.block_length={block_length} must divide sampler.gen_length="
                f"{gen_length}; allowed: a divisor of {gen_length}, e.g. "
                f"{nearby(divisors(gen_length), block_length)}"
            )
        self.gen_length = gen_length
        self.block_length = block_length
        self.mask_id = mask_id
        self.temperature = float(temperature)
        self.cfg_scale = float(cfg_scale)
        self.score = score
        self.eos_id = eos_id
        self.suppress_eos = suppress_eos
        self.no_repeat_ngram = no_repeat_ngram
        self.cache = cache
        self.constraints = self._constraints()

    def _constraints(self) -> tuple[Constraint, ...]:
        """The logit constraints the knobs ask for, in the order they are applied."""
        constraints: list[Constraint] = []
        if self.suppress_eos:
            constraints.append(SuppressToken(self.eos_id))
        if self.no_repeat_ngram:
            constraints.append(NoRepeatNGram(self.no_repeat_ngram, self.mask_id, exempt=self.eos_id))
        return tuple(constraints)

    @property
    def num_blocks(self) -> int:
        return self.gen_length // self.block_length

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={getattr(self, k)!r}' for k in self.KNOBS)})"

    # ------------------------------------------------------------------ public entry point

    def generate(
        self,
        denoiser: Denoiser,
        prompt: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> SampleResult:
        """Generate an answer of (up to) ``gen_length`` tokens after each prompt row.

        Args:
            denoiser: ids ``(B, L)`` -> logits ``(B, L, V)``; called under ``no_grad``.
            prompt: ``(B, Lp)`` long tensor; all rows share the length ``Lp``.
            generator: source of every random draw (Gumbel noise, random confidence);
                ``None`` uses torch's global RNG. Must live on the prompt's device.
        """
        self._check_prompt(prompt)
        started = time.perf_counter()
        denoiser = self.cache.wrap(denoiser)
        run = SamplingRun(x=prompt, prompt_length=prompt.shape[1], denoiser=denoiser, generator=generator)
        with torch.no_grad():
            self.decode(run)
        if run.x.is_cuda:
            torch.cuda.synchronize(run.x.device)
        return SampleResult(
            tokens=run.x,
            prompt_length=run.prompt_length,
            nfe=run.nfe,
            committed_per_step=run.committed_per_step,
            seconds=time.perf_counter() - started,
        )

    # ------------------------------------------------------------------------------ hooks

    def decode(self, run: SamplingRun) -> None:
        """Append ``gen_length`` masks to the prompt and unmask them block by block."""
        masks = run.x.new_full((run.x.shape[0], self.gen_length), self.mask_id)
        run.x = torch.cat([run.x, masks], dim=1)
        for start in range(run.prompt_length, run.x.shape[1], self.block_length):
            self.start_block(run, start, start + self.block_length)
            self.decode_block(run, start, start + self.block_length)

    @abstractmethod
    def decode_block(self, run: SamplingRun, start: int, end: int) -> None:
        """Unmask the block ``[start, end)`` of ``run.x``; every commit goes through ``commit``."""

    def confidence(
        self, logits: torch.Tensor, x0: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        """Score ``(B, L)`` per position, higher committed sooner: the ``score`` component."""
        return self.score(logits, x0, generator)

    # -------------------------------------------------------------------- building blocks

    def start_block(self, run: SamplingRun, start: int, end: int) -> None:
        """Tell a stateful denoiser (a KV cache) that block ``[start, end)`` begins.

        Called before the block's first denoiser call; a denoiser without ``start_block``
        is stateless and needs no notice.
        """
        hook = getattr(run.denoiser, "start_block", None)
        if hook is not None:
            hook(start, end)

    def propose(self, run: SamplingRun, end: int) -> Proposal:
        """One denoiser call: constrained logits, predicted tokens and their confidence.

        Only masked positions before ``end`` are candidates; confidence is ``-inf`` at every
        other position, so no rule can pick them.
        """
        logits = self.logits(run)
        for constraint in self.constraints:
            logits = constraint(logits, run.x, run.prompt_length)
        x0 = gumbel_max_tokens(logits, self.temperature, run.generator)
        score = self.confidence(logits, x0, run.generator)
        masked = run.x == self.mask_id
        positions = torch.arange(run.x.shape[1], device=run.x.device)
        candidates = masked & (positions < end)
        return Proposal(
            tokens=torch.where(masked, x0, run.x),
            confidence=torch.where(candidates, score, -torch.inf),
            candidates=candidates,
            logits=logits,
        )

    def logits(self, run: SamplingRun) -> torch.Tensor:
        """Denoiser logits for ``run.x``, guided when ``cfg_scale > 0``.

        The unconditional input is ``x`` with the prompt masked. Both go through the
        denoiser as one doubled batch, which counts as one NFE.
        """
        x = run.x
        run.nfe += 1
        if self.cfg_scale == 0:
            return self._call(run.denoiser, x)
        unconditional = x.clone()
        unconditional[:, : run.prompt_length] = self.mask_id
        cond, uncond = torch.chunk(self._call(run.denoiser, torch.cat([x, unconditional])), 2)
        return uncond + (self.cfg_scale + 1) * (cond - uncond)

    def commit(self, run: SamplingRun, x0: torch.Tensor, chosen: torch.Tensor, count: int) -> None:
        """Write ``x0`` at the ``chosen`` positions; ``count`` is how many there are.

        The count is passed in (the commit rule knows it) rather than read back from the
        device, which would stall the GPU once per step.
        """
        run.x = torch.where(chosen, x0, run.x)
        run.committed_per_step.append(count)

    # ----------------------------------------------------------------------------- checks

    def _call(self, denoiser: Denoiser, x: torch.Tensor) -> torch.Tensor:
        logits = denoiser(x)
        if logits.dim() != 3 or logits.shape[:2] != x.shape:
            raise ValueError(
                f"denoiser must map ids {tuple(x.shape)} to logits (B, L, V); "
                f"got {tuple(logits.shape)}"
            )
        return logits

    def _check_prompt(self, prompt: torch.Tensor) -> None:
        if prompt.dim() != 2 or prompt.dtype != torch.long:
            raise ValueError(
                f"prompt must be a (B, Lp) torch.long tensor; got shape {tuple(prompt.shape)} "
                f"and dtype {prompt.dtype}"
            )
        if prompt.shape[0] == 0:
            raise ValueError("prompt must hold at least one row")
        if (prompt == self.mask_id).any():
            raise ValueError(
                f"prompt contains sampler.mask_id={self.mask_id}; prompts must be fully "
                "observed (the sampler never changes the prompt)"
            )


# ------------------------------------------------------------------------ validation helpers


def require_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"sampler.{name} must be an integer; got {value!r}")
    if value < minimum:
        raise ValueError(f"sampler.{name}={value} must be >= {minimum}")


def require_number(name: str, value: object, *, minimum: float | None = None, why: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"sampler.{name} must be a number; got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"sampler.{name}={value} must be >= {minimum}" + (f" ({why})" if why else ""))


def require_component(name: str, value: object, ok: bool, expected: str) -> None:
    """A component knob (score, cache) must be an object, not a name: ``sampler.cache=prefix``
    on the command line replaces the component with the string ``'prefix'``."""
    if not ok:
        raise ValueError(f"sampler.{name}={value!r}: expected {expected}")


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def nearby(valid: list[int], wanted: int) -> str:
    """The valid value(s) closest to ``wanted``, for error messages."""
    below = [v for v in valid if v < wanted]
    above = [v for v in valid if v > wanted]
    picks = ([below[-1]] if below else []) + ([above[0]] if above else [])
    return " or ".join(str(v) for v in picks)
