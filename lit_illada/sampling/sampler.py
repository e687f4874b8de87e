"""The blockwise masked-diffusion sampling loop (LLaDA's ``generate``) and its hooks.

A policy is two decisions, each a hook that a small subclass overrides:

* ``confidence``: how sure the model is about each predicted token (probability of the
  prediction, a uniform draw, later margin or negative entropy);
* ``decode_block``: how many and which positions to commit per step. The default is the
  LLaDA schedule (a fixed number per step, top-k by confidence); threshold or factor rules
  override it with their own loop over the block.

Everything else (guidance, Gumbel-max prediction, which positions may win, bookkeeping)
lives here once, so that every policy matches the reference wherever it does not
deliberately differ from it.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from lit_illada.sampling.result import SampleResult

Denoiser = Callable[[torch.Tensor], torch.Tensor]
"""Any callable from ids ``(B, L)`` to logits ``(B, L, V)``: a model, an HF wrapper, a stub."""


def transfer_schedule(masked: torch.Tensor, steps: int) -> list[list[int]]:
    """Tokens to commit at each of ``steps`` steps, per row, for a block's masked positions.

    A row with ``m`` masked positions commits ``m // steps`` per step and one more in the
    first ``m % steps`` steps (LLaDA's ``get_num_transfer_tokens``). Returned as Python
    ints, computed once per block, so the step loop needs no device synchronisation.
    """
    counts = masked.sum(dim=1).tolist()
    return [[m // steps + (1 if step < m % steps else 0) for step in range(steps)] for m in counts]


def top_k_per_row(confidence: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """Boolean ``(B, L)`` mask of the ``counts[j]`` most confident positions of each row.

    One ``torch.topk`` per row, as in the reference, so that ties break identically.
    """
    chosen = torch.zeros_like(confidence, dtype=torch.bool)
    for row, k in enumerate(counts):
        if k > 0:
            chosen[row, torch.topk(confidence[row], k=k).indices] = True
    return chosen


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


class Sampler(ABC):
    """Blockwise iterative unmasking of ``gen_length`` positions after a prompt.

    Args:
        gen_length: positions generated after the prompt.
        block_length: generation proceeds left to right in blocks of this size; only the
            current block (and any still-masked position before it) can be committed.
        steps: denoiser calls in total, split evenly over the blocks.
        temperature: 0 for greedy argmax; > 0 for Gumbel-max sampling at that temperature.
        cfg_scale: classifier-free guidance strength; 0 turns guidance off.
        mask_id: id of the [MASK] token. Must not occur in prompts.

    The denoiser is expected never to predict ``mask_id`` (a trained model does not); if
    it does, the position stays masked exactly as in the reference sampler.
    """

    def __init__(
        self,
        *,
        gen_length: int,
        block_length: int,
        steps: int,
        mask_id: int,
        temperature: float = 0.0,
        cfg_scale: float = 0.0,
    ) -> None:
        for name, value in (
            ("gen_length", gen_length),
            ("block_length", block_length),
            ("steps", steps),
        ):
            _require_int(name, value, minimum=1)
        _require_int("mask_id", mask_id, minimum=0)
        _require_number("temperature", temperature)
        _require_number("cfg_scale", cfg_scale)
        if gen_length % block_length != 0:
            raise ValueError(
                f"sampler.block_length={block_length} must divide sampler.gen_length="
                f"{gen_length}; allowed: a divisor of {gen_length}, e.g. "
                f"{_nearby(_divisors(gen_length), block_length)}"
            )
        num_blocks = gen_length // block_length
        if steps > gen_length:
            raise ValueError(
                f"sampler.steps={steps} exceeds sampler.gen_length={gen_length}; extra steps "
                f"would commit nothing. Allowed: at most {gen_length}"
            )
        if steps % num_blocks != 0:
            valid = list(range(num_blocks, gen_length + 1, num_blocks))
            raise ValueError(
                f"sampler.steps={steps} must be a multiple of the number of blocks "
                f"(gen_length / block_length = {num_blocks}) so every block gets the same "
                f"steps; allowed: multiples of {num_blocks} up to {gen_length}, e.g. "
                f"{_nearby(valid, steps)}"
            )
        if temperature < 0:
            raise ValueError(f"sampler.temperature={temperature} must be >= 0 (0 is greedy)")
        if cfg_scale < 0:
            raise ValueError(f"sampler.cfg_scale={cfg_scale} must be >= 0 (0 turns CFG off)")
        self.gen_length = gen_length
        self.block_length = block_length
        self.steps = steps
        self.mask_id = mask_id
        self.temperature = float(temperature)
        self.cfg_scale = float(cfg_scale)

    @property
    def num_blocks(self) -> int:
        return self.gen_length // self.block_length

    @property
    def steps_per_block(self) -> int:
        return self.steps // self.num_blocks

    def __repr__(self) -> str:
        knobs = ("gen_length", "block_length", "steps", "temperature", "cfg_scale", "mask_id")
        return f"{type(self).__name__}({', '.join(f'{k}={getattr(self, k)}' for k in knobs)})"

    # ------------------------------------------------------------------ public entry point

    def generate(
        self,
        denoiser: Denoiser,
        prompt: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> SampleResult:
        """Generate ``gen_length`` tokens after each prompt row.

        Args:
            denoiser: ids ``(B, L)`` -> logits ``(B, L, V)``; called under ``no_grad``.
            prompt: ``(B, Lp)`` long tensor; all rows share the length ``Lp``.
            generator: source of every random draw (Gumbel noise, random confidence);
                ``None`` uses torch's global RNG. Must live on the prompt's device.
        """
        self._check_prompt(prompt)
        start = time.perf_counter()
        batch, prompt_length = prompt.shape
        x = torch.full(
            (batch, prompt_length + self.gen_length),
            self.mask_id,
            dtype=torch.long,
            device=prompt.device,
        )
        x[:, :prompt_length] = prompt
        run = SamplingRun(x=x, prompt_length=prompt_length, denoiser=denoiser, generator=generator)
        with torch.no_grad():
            for block_start in range(prompt_length, x.shape[1], self.block_length):
                self.decode_block(run, block_start, block_start + self.block_length)
        if x.is_cuda:
            torch.cuda.synchronize(x.device)
        return SampleResult(
            tokens=run.x,
            prompt_length=prompt_length,
            nfe=run.nfe,
            committed_per_step=run.committed_per_step,
            seconds=time.perf_counter() - start,
        )

    # ------------------------------------------------------------------------------ hooks

    def decode_block(self, run: SamplingRun, start: int, end: int) -> None:
        """Unmask the block ``[start, end)``: LLaDA's fixed schedule with top-k commits.

        The number per step is fixed from the masked count at the block start; each step
        commits the most confident candidates. Commit rules that adapt the count (threshold,
        factor, EB) override this method.
        """
        schedule = transfer_schedule(run.x[:, start:end] == self.mask_id, self.steps_per_block)
        for step in range(self.steps_per_block):
            x0, confidence = self.propose(run, end)
            counts = [row[step] for row in schedule]
            self.commit(run, x0, top_k_per_row(confidence, counts), sum(counts))

    @abstractmethod
    def confidence(
        self, logits: torch.Tensor, x0: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        """Score ``(B, L)`` per position; higher is committed sooner. Policies override."""

    # -------------------------------------------------------------------- building blocks

    def propose(self, run: SamplingRun, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One denoiser call: predicted tokens and their confidence.

        Confidence is ``-inf`` wherever a position may not be committed this step: positions
        at or after ``end`` and positions that are not masked. ``x0`` keeps the current
        token at unmasked positions.
        """
        logits = self.logits(run)
        x0 = gumbel_max_tokens(logits, self.temperature, run.generator)
        score = self.confidence(logits, x0, run.generator)
        masked = run.x == self.mask_id
        positions = torch.arange(run.x.shape[1], device=run.x.device)
        candidates = masked & (positions < end)
        return torch.where(masked, x0, run.x), torch.where(candidates, score, -torch.inf)

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


def _require_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"sampler.{name} must be an integer; got {value!r}")
    if value < minimum:
        raise ValueError(f"sampler.{name}={value} must be >= {minimum}")


def _require_number(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"sampler.{name} must be a number; got {value!r}")


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _nearby(valid: list[int], wanted: int) -> str:
    """The valid value(s) closest to ``wanted``, for error messages."""
    below = [v for v in valid if v < wanted]
    above = [v for v in valid if v > wanted]
    picks = ([below[-1]] if below else []) + ([above[0]] if above else [])
    return " or ".join(str(v) for v in picks)
