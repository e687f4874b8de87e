"""lm-eval-harness adapter: `lit_illada` as an lm-eval model (install with the `eval` extra).

    python -m lit_illada.lm_eval run --model lit_illada \
        --model_args ckpt=runs/<name>,scoring=confidence,sampler=threshold,sampler.threshold=0.9 \
        --tasks arc_challenge

``python -m lit_illada.lm_eval`` is lm-eval's own CLI with this model registered (lm-eval
has no plugin entry point for models, so a bare ``lm_eval`` command cannot see it).
``model_args`` takes ``ckpt`` (a run dir, .ckpt, imported or HF LLaDA dir), ``scoring``
(a conf/scoring name), ``sampler`` (a conf/sampler name), ``device``, ``add_bos``, and any
``scoring.*`` / ``sampler.*`` override in Hydra syntax.

* ``loglikelihood``: the configured scorer (LLaDA Monte Carlo likelihood or iLLaDA
  confidence; exact likelihood for AR checkpoints, where an explicit ``scoring`` is refused). ``is_greedy`` is reported False:
  a masked diffusion LM has no single greedy continuation to compare against.
* ``loglikelihood_rolling``: minus the diffusion ELBO bound of the whole string (the
  likelihood scorer with an empty context).
* ``generate_until``: the configured sampler; output cut at the first stop string.
"""

from __future__ import annotations

import torch
from hydra import compose, initialize_config_dir
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from tqdm import tqdm

from lit_illada.config.checks import pick_device
from lit_illada.config.paths import CONF_DIR
from lit_illada.evaluation.completion import batches_by_length
from lit_illada.evaluation.runner import build_eval_model
from lit_illada.scoring import LikelihoodScorer

GROUP_KEYS = ("scoring", "sampler")


def compose_eval_config(args: dict):
    """Hydra's evaluate config with the lm-eval model_args applied as overrides."""
    overrides = [f"ckpt={args.pop('ckpt')}"]
    for key, value in args.items():
        if key in GROUP_KEYS or key.split(".")[0].split("/")[0] in GROUP_KEYS or key in ("device", "add_bos", "seed"):
            overrides.append(f"{key}={value}")
        else:
            raise ValueError(
                f"lit_illada model_args: unknown key {key!r}; use ckpt, scoring, sampler, device, add_bos, "
                "seed, or scoring.<knob> / sampler.<knob>"
            )
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="evaluate", overrides=overrides)


@register_model("lit_illada")
class LitIlladaLM(LM):
    def __init__(self, ckpt: str | None = None, batch_size: int | str = 1, max_batch_size=None, **model_args) -> None:
        super().__init__()
        if ckpt is None:
            raise ValueError("lit_illada needs model_args ckpt=<run dir, .ckpt or model dir>")
        cfg = compose_eval_config({"ckpt": ckpt, **{k: v for k, v in model_args.items() if v is not None}})
        self.model, _ = build_eval_model(cfg, pick_device(cfg.device), explicit_scoring="scoring" in model_args)
        self.batch_size = int(batch_size) if str(batch_size).isdigit() else 1

    # -------------------------------------------------------------------- helpers
    def _pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        context_ids = self.model.encode_prompt(context)
        continuation_ids = self.model.tokenizer.encode(continuation)
        total = len(context_ids) + len(continuation_ids)
        if total > self.model.max_seq_len:
            raise ValueError(
                f"request of {total} tokens (context {len(context_ids)} + continuation "
                f"{len(continuation_ids)}) exceeds the model's max_seq_len={self.model.max_seq_len}; "
                "use fewer few-shot examples (--num_fewshot) or a longer-context model"
            )
        return context_ids, continuation_ids

    # -------------------------------------------------------------- lm-eval API
    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        pairs = [self._pair(*request.args) for request in requests]
        scores: list[float] = []
        chunk = 64  # pairs per score_many call: bounded memory, a live progress bar
        for start in tqdm(range(0, len(pairs), chunk), desc="loglikelihood", disable=disable_tqdm):
            scores += self.model.scorer.score_many(self.model.denoiser, pairs[start : start + chunk])
        return [(score, False) for score in scores]

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        scorer = self.model.scorer
        if not isinstance(scorer, LikelihoodScorer) and not self.model.decoding.causal:
            scorer = LikelihoodScorer(mask_id=self.model.tokenizer.mask_id)  # a bound needs the ELBO
        results = []
        for request in tqdm(requests, desc="loglikelihood_rolling", disable=disable_tqdm):
            context, ids = self._pair("", request.args[0])
            if self.model.decoding.causal and not context:
                context = [self.model.tokenizer.bos_id]
            results.append(scorer.score(self.model.denoiser, context, ids))
        return results

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        prompts = [self.model.encode_prompt(request.args[0]) for request in requests]
        limit = self.model.max_seq_len - self.model.sampler.gen_length
        too_long = [len(p) for p in prompts if len(p) > limit]
        if too_long:
            raise ValueError(
                f"a prompt of {max(too_long)} tokens + sampler.gen_length={self.model.sampler.gen_length} "
                f"exceeds max_seq_len={self.model.max_seq_len}"
            )
        device = next(self.model.net.parameters()).device
        outputs: list[str] = [""] * len(requests)
        generator = torch.Generator(device).manual_seed(0)
        for batch in tqdm(batches_by_length(prompts, self.batch_size), desc="generate_until", disable=disable_tqdm):
            ids = torch.tensor([prompts[i] for i in batch], device=device)
            result = self.model.generate(ids, generator)
            for row, index in enumerate(batch):
                text = self.model.tokenizer.decode(result.generated[row].tolist())
                until = requests[index].args[1].get("until", []) or []
                for stop in [until] if isinstance(until, str) else until:
                    text = text.split(stop)[0]
                outputs[index] = text
        return outputs
