"""Generation entry point.

    python -m lit_illada.generate ckpt=runs/<name> prompt="def add(a, b):" sampler=threshold
    python -m lit_illada.generate ckpt=runs/<name> prompts_file=prompts.jsonl output=out.jsonl

Prints each completion with a stats line (NFE, seconds, tokens/s); with ``prompts_file``
writes one JSON line per prompt, in input order. Prompts of equal token length share a
batch, because the samplers take rectangular (B, Lp) prompts.

A prompts file is streamed: ``window`` prompts at a time are read, batched by length and
appended to ``output`` as soon as every earlier line is written, so memory does not grow with
the file. Re-running the same command resumes: the prompts already in ``output`` (line i is
prompt i) are skipped, and a half-written last record is dropped and redone; a file holding
anything else (not written by this command, for these prompts and sampler) is refused and left
untouched. At temperature 0 a completion depends only on its prompt (up to float rounding
across batch shapes); at temperature > 0 the resumed prompts draw from a fresh ``seed`` sequence.
"""

from __future__ import annotations

import sys

import hydra
import torch
from omegaconf import DictConfig

from lit_illada.checkpoints.hf import resolve_dtype
from lit_illada.checkpoints.loader import load
from lit_illada.config.checks import exit_on_bad_input, pick_device, positive_int
from lit_illada.config.choices import record_choices
from lit_illada.config.errors import ConfigError
from lit_illada.config.overrides import run_cli
from lit_illada.config.paths import CONF_DIR
from lit_illada.evaluation.completion import Completer
from lit_illada.evaluation.prompt_files import generate_file, iter_prompts, output_path, prompts_path


def run(cfg: DictConfig) -> list[dict] | dict:
    """The completed row for ``prompt=``; a summary (output, total, generated, skipped) for a file."""
    record_choices(cfg)  # cfg.choices: Hydra's group choices, recorded with the config
    prompts = prompts_path(cfg)
    positive_int(cfg, "batch_size")
    positive_int(cfg, "window")
    if prompts is not None:
        output = output_path(cfg, prompts)  # a directory, a foreign or unwritable file: refused now
        for _ in iter_prompts(prompts):  # a malformed line fails before the checkpoint loads
            pass
    elif cfg.output is not None:
        raise ConfigError(
            f"output={cfg.output}: applies to prompts_file= only (one prompt= prints its completion); "
            f'put the prompt in a JSONL file ({{"prompt": "..."}} per line) or drop output='
        )
    device = pick_device(cfg.device)
    dtype = model_dtype(cfg.dtype)
    try:
        loaded = load(cfg.ckpt, device=device, dtype=dtype, key="ckpt")
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(str(err)) from err
    completer = Completer(cfg, loaded, device)
    if prompts is not None:
        return generate_file(cfg, completer, prompts, output)
    row = {"prompt": str(cfg.prompt)}
    [result] = completer.complete([row], [completer.encode(row)])
    print(result["prompt"] + result["completion"])
    print(
        f"[NFE {result['nfe']}, {result['seconds']:.3f} s, {result['tokens_per_s']:.1f} tok/s, "
        f"{result['tokens_per_forward']:.2f} tok/forward]",
        file=sys.stderr,
    )
    return [result]


def model_dtype(name) -> torch.dtype | None:
    """``dtype=`` as a torch dtype: the usual names and aliases (bf16, fp16, fp32); None keeps float32."""
    if name is None:
        return None
    try:
        return resolve_dtype(str(name))
    except ValueError as err:
        raise ConfigError(str(err)) from None


@hydra.main(config_path=str(CONF_DIR), config_name="generate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    exit_on_bad_input(run, cfg)


if __name__ == "__main__":
    run_cli(main, "generate")
