"""lm-eval's generation requests: what each one asks for, and where its answer ends.

A ``generate_until`` request carries ``(context, gen_kwargs)``; the keys read here are the
ones lm-eval's tasks set: ``until`` (stop strings), ``max_gen_toks`` (or HF's
``max_new_tokens``), ``do_sample`` and ``temperature``. Any other key (``top_p``, ...) has no
counterpart in the samplers and is reported, never applied silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lit_illada.config.errors import ConfigError

DEFAULT_MAX_GEN_TOKS = 256  # lm-eval's HF model: when a task gives no max_gen_toks
LENGTH_KEYS = ("max_gen_toks", "max_new_tokens")
READ_KEYS = frozenset({"until", "do_sample", "temperature", *LENGTH_KEYS})


@dataclass(frozen=True)
class GenerationRequest:
    until: tuple[str, ...]
    max_gen_toks: int
    temperature: float  # 0 is greedy


def read_request(gen_kwargs: dict) -> GenerationRequest:
    until = gen_kwargs.get("until") or []
    until = [until] if isinstance(until, str) else list(until)
    length = next(
        (gen_kwargs[key] for key in LENGTH_KEYS if gen_kwargs.get(key) is not None), DEFAULT_MAX_GEN_TOKS
    )
    if isinstance(length, bool) or not str(length).isdigit() or int(length) < 1:
        raise ConfigError(f"generate_until: max_gen_toks={length!r}: expected a positive integer")
    do_sample, temperature = gen_kwargs.get("do_sample"), gen_kwargs.get("temperature")
    if do_sample is False:
        temperature = 0.0  # greedy, whatever temperature says (as in lm-eval's HF model)
    elif temperature is None:
        temperature = 1.0 if do_sample else 0.0  # do_sample alone samples at HF's default temperature
    temperature = float(temperature)
    if temperature < 0:
        raise ConfigError(f"generate_until: temperature={temperature}: must be >= 0 (0 is greedy)")
    return GenerationRequest(tuple(str(stop) for stop in until), int(length), temperature)


def unread_keys(gen_kwargs: dict) -> set[str]:
    return set(gen_kwargs) - READ_KEYS


def finish(
    ids: list[int], eos_id: int, until: tuple[str, ...], decode: Callable[[list[int]], str]
) -> tuple[str, bool]:
    """The answer up to the first EOS or stop string, and whether it reached one (False: cut off)."""
    ended = eos_id in ids
    if ended:
        ids = ids[: ids.index(eos_id)]  # a denoised answer is EOS-padded; what follows is not an answer
    text = decode(ids)
    stops = [text.index(stop) for stop in until if stop and stop in text]
    if stops:
        return text[: min(stops)], True
    return text, ended
