"""lm-eval-harness adapter: `lit_illada` as an lm-eval model (install with the `eval` extra).

    python -m lit_illada.lm_eval run --model lit_illada \
        --model_args ckpt=runs/<name>,scoring=confidence,sampler=threshold,sampler.threshold=0.9 \
        --tasks arc_challenge
    torchrun --nproc_per_node 8 -m lit_illada.lm_eval run --model lit_illada --model_args ckpt=... --tasks ...

``python -m lit_illada.lm_eval`` is lm-eval's own CLI with this model registered (lm-eval
has no plugin entry point for models, so a bare ``lm_eval`` command cannot see it).
``model_args`` takes ``ckpt`` (a run dir, .ckpt, imported or HF LLaDA dir), ``scoring``
(a conf/scoring name), ``sampler`` (a conf/sampler name), ``device``, ``add_bos``, ``seed``,
``check_greedy`` and any ``scoring.*`` / ``sampler.*`` override in Hydra syntax.

It behaves as lm-eval's own HF model wherever a task's numbers depend on it:

* requests are encoded as lm-eval's ``TemplateLM`` encodes them (the context's trailing
  whitespace moves to the continuation; the whole string is encoded once and split at the
  context's length), so BPE boundaries are the ones the model saw in training. An empty
  context is the token the model saw before documents: EOS in the packed pretraining
  stream, BOS for SFT checkpoints (``prefix_token_id``);
* ``loglikelihood``: the configured scorer (exact likelihood for AR checkpoints) and
  ``is_greedy`` computed (``lm_eval_scoring``; ``check_greedy=false`` skips it for
  multiple-choice runs, which never read it, and reports False);
* ``loglikelihood_rolling``: lm-eval's rolling windows after the prefix token, each scored
  exactly (AR) or by its ELBO bound (diffusion);
* ``generate_until``: the request's ``until``, ``max_gen_toks`` (the generation length unless
  ``sampler.gen_length`` is given) and ``do_sample`` / ``temperature`` (unless
  ``sampler.temperature`` is given); answers cut off by the length are counted in a warning;
* ``--apply_chat_template``: the tokenizer's chat template (``lm_eval_chat``);
* ``--batch_size``: sequences per forward (Monte Carlo rows or candidates when scoring, unless
  ``scoring.batch_size`` is given; prompts when generating); ``auto`` halves from
  ``--max_batch_size`` (64) on out-of-memory;
* data parallel under ``torchrun`` / ``accelerate launch``: rank and world size from the
  environment, lm-eval shards the documents and gathers the metrics (``lm_eval_parallel``).
"""

from __future__ import annotations

import copy
import logging
from collections import defaultdict
from functools import partial

import torch
from hydra import compose, initialize_config_dir
from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window, simple_parse_args_string
from tqdm import tqdm

from lit_illada.config.checks import pick_device
from lit_illada.config.choices import given, record_choices
from lit_illada.config.errors import ConfigError
from lit_illada.config.paths import CONF_DIR
from lit_illada.evaluation import lm_eval_chat, lm_eval_scoring
from lit_illada.evaluation.batch_size import BatchSize
from lit_illada.evaluation.lm_eval_generation import GenerationRequest, finish, read_request, unread_keys
from lit_illada.evaluation.lm_eval_parallel import ProcessGroup
from lit_illada.evaluation.runner import SamplerForLength, build_eval_model
from lit_illada.scoring import LikelihoodScorer

log = logging.getLogger(__name__)

GROUP_KEYS = ("scoring", "sampler")
SETTING_KEYS = ("device", "add_bos", "seed")
CHUNK = 64  # requests per scoring call: bounded memory, a live progress bar


def compose_eval_config(args: dict):
    """Hydra's evaluate config with the lm-eval model_args applied as overrides (recorded, so
    that ``given`` tells an explicit ``sampler.gen_length`` from the default)."""
    overrides = [f"ckpt={args.pop('ckpt')}"]
    for key, value in args.items():
        if key in GROUP_KEYS or key.split(".")[0].split("/")[0] in GROUP_KEYS or key in SETTING_KEYS:
            overrides.append(f"{key}={value}")
        else:
            raise ConfigError(
                f"lit_illada model_args: unknown key {key!r}; use ckpt, scoring, sampler, device, add_bos, "
                "seed, check_greedy, or scoring.<knob> / sampler.<knob>"
            )
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return record_choices(compose(config_name="evaluate", overrides=overrides, return_hydra_config=True))


@register_model("lit_illada")
class LitIlladaLM(TemplateLM):
    def __init__(
        self,
        ckpt: str | None = None,
        batch_size: int | str = 1,
        max_batch_size: int | None = None,
        check_greedy: bool | str = True,
        **model_args,
    ) -> None:
        super().__init__()
        if ckpt is None:
            raise ConfigError("lit_illada needs model_args ckpt=<run dir, .ckpt or model dir>")
        self.cfg = compose_eval_config(
            {"ckpt": ckpt, **{k: v for k, v in model_args.items() if v is not None}}
        )
        self.group = ProcessGroup.from_environment()
        device = self.group.device_for(pick_device(self.cfg.device))
        self.group.start(device)
        self._rank, self._world_size, self._device = self.group.rank, self.group.world_size, device
        self.model, _ = build_eval_model(self.cfg, device, explicit_scoring=given(self.cfg, "scoring"))
        self.check_greedy = _flag(check_greedy, "check_greedy")
        self.batch = BatchSize(batch_size, max_batch_size)
        self.score_batch = (
            BatchSize(self.cfg.scoring.batch_size) if given(self.cfg, "scoring.batch_size") else self.batch
        )
        self.generator = torch.Generator(device).manual_seed(int(self.cfg.seed))
        self._samplers: dict[float | None, SamplerForLength] = {}
        self._chat_templates: dict[str, str] | None = None
        self._chat_name: str | None = None

    @classmethod
    def create_from_arg_string(cls, arg_string: str, additional_config: dict | None = None):
        # model_args win over what lm-eval adds: its CLI always passes device (cuda:0 by
        # default), and device=cpu in model_args must not collide with it.
        args = simple_parse_args_string(arg_string)
        return cls.create_from_arg_obj(args, additional_config)

    @classmethod
    def create_from_arg_obj(cls, arg_dict: dict, additional_config: dict | None = None):
        extra = {k: v for k, v in (additional_config or {}).items() if v is not None and k not in arg_dict}
        return cls(**arg_dict, **extra)

    # ------------------------------------------------------------------ tokens and settings
    @property
    def eot_token_id(self) -> int:
        return self.model.tokenizer.eos_id

    @property
    def prefix_token_id(self) -> int:
        """What the model saw before a text in training: BOS before SFT prompts, else the EOS
        that ends the previous document of the packed stream (never an untrained BOS)."""
        return self.model.tokenizer.bos_id if self.model.add_bos else self.model.tokenizer.eos_id

    @property
    def max_length(self) -> int:
        return self.model.max_seq_len

    @property
    def tokenizer_name(self) -> str:
        return self.model.tokenizer.name.replace("/", "__")

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs) -> list[int]:
        ids = self.model.tokenizer.encode(string)
        if add_special_tokens is False or not self.model.add_bos:
            return ids
        bos = self.model.tokenizer.bos_id
        return ids if ids[:1] == [bos] else [bos, *ids]  # a chat template may have written BOS itself

    # ------------------------------------------------------------------------ loglikelihood
    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        pairs = [self._checked(strings, context, continuation) for strings, context, continuation in requests]
        greedy = self.check_greedy
        if not greedy:
            log.info(
                "check_greedy=false: is_greedy is reported False (metrics such as LAMBADA's acc read it)"
            )
        scores = self._score(self.model.scorer, pairs, disable_tqdm, "loglikelihood", greedy=greedy)
        return [(score, bool(is_greedy)) for score, is_greedy in scores]

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        scorer = self.model.scorer
        if not isinstance(scorer, LikelihoodScorer) and not self.model.decoding.causal:
            scorer = LikelihoodScorer(mask_id=self.model.tokenizer.mask_id)  # a bound needs the ELBO
        windows, owners = [], []
        for index, request in enumerate(requests):
            text = request.args[0]
            ids = self.tok_encode(text, add_special_tokens=False)
            # Context + window fit max_length: lm-eval's windows count the shifted input only.
            for window in get_rolling_token_windows(ids, self.prefix_token_id, self.max_length - 1, 1):
                context, continuation = make_disjoint_window(window)
                windows.append(self._checked((text,), context, continuation))
                owners.append(index)
        totals = [0.0] * len(requests)
        for owner, (score, _) in zip(
            owners, self._score(scorer, windows, disable_tqdm, "loglikelihood_rolling"), strict=True
        ):
            totals[owner] += score
        return totals

    def _score(
        self, scorer, pairs, disable_tqdm: bool, what: str, greedy: bool = False
    ) -> list[tuple[float, bool]]:
        """Scores (and greedy checks) in chunks of similar length; the results in request order."""
        order = sorted(range(len(pairs)), key=lambda i: -(len(pairs[i][0]) + len(pairs[i][1])))
        results: list[tuple[float, bool]] = [(0.0, False)] * len(pairs)
        device, seed, causal = self.device, int(self.cfg.seed), self.model.decoding.causal
        for start in tqdm(range(0, len(order), CHUNK), desc=what, disable=disable_tqdm or self.rank != 0):
            chunk = order[start : start + CHUNK]
            items = lm_eval_scoring.candidates([pairs[i] for i in chunk], scorer, seed, device)
            scores = lm_eval_scoring.score(scorer, self.model.denoiser, items, self.score_batch)
            checks = (
                lm_eval_scoring.greedy(scorer, self.model.denoiser, items, causal, self.score_batch)
                if greedy
                else [False] * len(items)
            )
            for index, score, is_greedy in zip(chunk, scores, checks, strict=True):
                results[index] = (score, is_greedy)
        return results

    def _checked(self, strings, context: list[int], continuation: list[int]) -> tuple[list[int], list[int]]:
        where = f"request {tuple(s[-60:] for s in strings)!r}"
        total = len(context) + len(continuation)
        if not continuation:
            raise ConfigError(
                f"{where}: the continuation has no tokens of its own once context and continuation are "
                "encoded together (the tokenizer merges it into the context's last token)"
            )
        if total > self.max_length:
            raise ConfigError(
                f"{where} is {total} tokens (context {len(context)} + continuation {len(continuation)}), "
                f"over the model's max_seq_len={self.max_length}; use fewer few-shot examples "
                "(--num_fewshot) or a longer-context model"
            )
        mask = self.model.tokenizer.mask_id
        if mask in context or mask in continuation:
            raise ConfigError(
                f"{where} holds the mask token (id {mask}), which a scored text must not contain"
            )
        return context, continuation

    # ----------------------------------------------------------------------- generation
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        asked = [read_request(request.args[1]) for request in requests]
        self._report_settings(requests)
        prompts = [self.tok_encode(request.args[0]) for request in requests]
        samplers = [self._sampler(request) for request in asked]
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for index, (prompt, sampler) in enumerate(zip(prompts, samplers, strict=True)):
            self._check_prompt(prompt, sampler.gen_length, asked[index])
            groups[(len(prompt), id(sampler))].append(index)
        outputs, cut_off = [""] * len(requests), 0
        bar = tqdm(total=len(requests), desc="generate_until", disable=disable_tqdm or self.rank != 0)
        for members in groups.values():
            start = 0
            while start < len(members):
                batch, result = self.batch.run(
                    partial(self._generate, members[start:], prompts, samplers[members[0]])
                )
                for row, index in enumerate(batch):
                    ids = result.generated[row].tolist()
                    outputs[index], ended = finish(
                        ids, self.eot_token_id, asked[index].until, self.model.tokenizer.decode
                    )
                    cut_off += not ended
                start += len(batch)
                bar.update(len(batch))
        bar.close()
        if cut_off:
            log.warning(
                "generate_until: %d of %d answers were cut off: they filled their generation length "
                "(max_gen_toks, or sampler.gen_length when given) without a stop string or EOS; raise "
                "--gen_kwargs max_gen_toks=... (or sampler.gen_length) if answers are longer",
                cut_off,
                len(requests),
            )
        return outputs

    def _generate(self, members: list[int], prompts, sampler, size: int):
        batch = members[:size]
        ids = torch.tensor([prompts[i] for i in batch], device=self.device)
        with torch.no_grad():
            return batch, self.model.decoding.generate(self.model.net, ids, sampler, self.generator)

    def _sampler(self, request: GenerationRequest):
        """The configured sampler at the request's length and temperature, unless the
        model_args fixed them (``sampler.gen_length`` / ``sampler.temperature``)."""
        temperature = None if given(self.cfg, "sampler.temperature") else request.temperature
        if temperature not in self._samplers:
            cfg = copy.deepcopy(self.cfg)
            if temperature is not None:
                cfg.sampler.temperature = temperature
            self._samplers[temperature] = SamplerForLength(cfg, self.model.tokenizer)
        return self._samplers[temperature](request.max_gen_toks)

    def _check_prompt(self, prompt: list[int], gen_length: int, request: GenerationRequest) -> None:
        if not prompt:
            raise ConfigError("generate_until: an empty prompt (and no BOS); give the request some context")
        if len(prompt) + gen_length > self.max_length:
            source = "sampler.gen_length" if given(self.cfg, "sampler.gen_length") else "max_gen_toks"
            raise ConfigError(
                f"generate_until: a prompt of {len(prompt)} tokens + {source}={gen_length} exceeds the "
                f"model's max_seq_len={self.max_length}; lower {source} (--gen_kwargs max_gen_toks=... or "
                "sampler.gen_length) or use fewer few-shot examples"
            )

    def _report_settings(self, requests) -> None:
        unread = set().union(*(unread_keys(request.args[1]) for request in requests)) if requests else set()
        if unread:
            log.warning(
                "generate_until: gen_kwargs %s have no counterpart in lit_illada's samplers; ignored",
                sorted(unread),
            )
        if given(self.cfg, "sampler.temperature"):
            log.info(
                "sampler.temperature=%s (model_args) overrides the tasks' temperature and do_sample",
                self.cfg.sampler.temperature,
            )

    # ------------------------------------------------------------------- chat templates
    def chat_template(self, chat_template: bool | str = False) -> str | None:
        if chat_template is False or chat_template is None:
            return None
        self._chat_name = chat_template if isinstance(chat_template, str) else None
        return self._template()

    def apply_chat_template(
        self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True
    ) -> str:
        tokenizer = self.model.tokenizer
        special = {
            f"{name}_token": tokenizer.decode([getattr(tokenizer, f"{name}_id")], skip_special=False)
            for name in ("bos", "eos", "pad")
        }
        return lm_eval_chat.render(self._template(), chat_history, add_generation_prompt, special)

    def _template(self) -> str:
        if self._chat_templates is None:
            self._chat_templates = lm_eval_chat.find_templates(self.model.tokenizer)
        return lm_eval_chat.select(self._chat_templates, self._chat_name, where=f"ckpt={self.cfg.ckpt}")

    # ------------------------------------------------------- data parallel (lm-eval's hooks)
    def all_gather(self, tensor):
        return self.group.all_gather(tensor)

    def gather_object(self, obj, dst: int = 0):
        return self.group.gather_object(obj, dst)

    def barrier(self) -> None:
        self.group.barrier()


def _flag(value: bool | str, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    raise ConfigError(f"lit_illada model_args {name}={value!r}: expected true or false")
