"""The LightningModule: puts the backbone, objective, optimizer, lr schedule and sampler together.

Every component arrives already built (Hydra instantiates them in ``train.py``), so this
file holds no switches over component kinds. It owns the training/validation steps,
logging, and what goes into a checkpoint so that a run can be rebuilt from it alone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from functools import partial
from typing import Any

import lightning as L
import torch
from torch.optim.lr_scheduler import LambdaLR
from torchmetrics import MeanMetric

from lit_illada.config.parallel import FSDPConfig
from lit_illada.core.model import ModelConfig, Transformer
from lit_illada.planning.plan import executed_flops
from lit_illada.sampling.decoding import decoding_for
from lit_illada.training.compilation import compile_blocks
from lit_illada.training.distributed import load_into_sharded, materialize, parallelize

VAL_SEED = 20240917  # fixed masks for validation, so val/nll is comparable across runs


class NonFiniteLossError(RuntimeError):
    """Raised before the optimizer step, so the weights and the last checkpoint stay good."""


class DiffusionLM(L.LightningModule):
    def __init__(
        self,
        model: ModelConfig,
        objective,
        optimizer: Callable[..., torch.optim.Optimizer],
        lr_schedule: Callable[[int, int], float] | None = None,
        sampler=None,
        byte_level: bool = False,
        run_config: dict | None = None,
        parallel: FSDPConfig | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__()
        self.config = model
        self.parallel = parallel
        self.compile_net = compile  # model.compile: done once, in configure_model
        self._blocks_compiled = False
        self.init_from: str | None = None  # with ``parallel``: weights copied in right after sharding
        # Sharded runs build on the meta device: configure_model() allocates only this rank's shards.
        with torch.device("meta") if parallel is not None else nullcontext():
            self.net = Transformer(model)
        self.objective = objective
        self.decoding = decoding_for(objective)  # how samples are drawn: denoising or left to right
        self.optimizer_factory = optimizer
        self.lr_schedule = lr_schedule
        self.sampler = sampler
        self.byte_level = byte_level
        self.run_config = run_config or {}
        self.val_loss, self.val_nll, self.val_acc = MeanMetric(), MeanMetric(), MeanMetric()
        self._step_started = 0.0
        self.train_tokens = 0
        self.train_head_positions = 0  # positions the LM head ran at (logits_at), for executed FLOPs
        self.train_seconds = 0.0
        # Set by the entry point: the model FLOPs per token (lit_illada.planning.plan.flops_per_token)
        # and the device's peak; with both, train/mfu_model and train/mfu_executed are logged.
        self.flops_per_token: float | None = None
        self.peak_flops: float | None = None
        self.last_validated_step = -1
        self._val_packed_text = True  # whether every validation batch was packed text (for val/bpb)

    # ----------------------------------------------------- compile and shard
    def configure_model(self) -> None:
        """Compile the blocks (``model.compile``) and, under FSDP2, shard the meta-device
        Transformer, then allocate and initialize the shards.

        Only the Transformer is materialized (Lightning's own meta materialization runs
        ``to_empty`` over the whole module and would wipe the torchmetrics states). Lightning
        calls this hook again for validate/test; a compiled or sharded net is left as it is.
        """
        if self.parallel is None:
            if self.compile_net and not self._blocks_compiled:
                compile_blocks(self.net)  # in place: checkpoint keys do not change
                self._blocks_compiled = True
            return
        if self.net.wte.weight.device.type != "meta":
            return
        parallelize(self.net, self.device_mesh["data_parallel"], self.parallel, compile=self.compile_net)
        materialize(self.net, self.trainer.strategy.root_device)
        if self.init_from is not None:
            load_into_sharded(self.net, self.init_from)

    # ----------------------------------------------------------------- steps
    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """ids (B, L) → logits (B, L, V): the denoiser that samplers and scorers call."""
        return self.net(input_ids, causal=self.decoding.causal)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._step_started = time.perf_counter()

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        out = self.objective(self.net, batch, training=True)
        if not torch.isfinite(out.loss):
            raise NonFiniteLossError(
                f"loss became {out.loss.item()} at step {self.global_step}; stopping before the "
                "optimizer step so the weights stay finite. The last good checkpoint is kept in "
                "checkpoints/. Try a lower optimizer.lr, a longer lr_schedule.warmup_steps, or "
                "trainer.gradient_clip_val."
            )
        self._step_tokens, self._step_head_positions = out.n_tokens, out.n_predicted
        self.train_tokens += out.n_tokens  # here, not at batch end: a batch-end checkpoint counts it
        self.train_head_positions += out.n_predicted
        self.log_dict(
            {"train/loss": out.loss.detach(), "train/nll": out.nll, "train/masked_acc": out.accuracy},
            prog_bar=False,
            on_step=True,
            sync_dist=True,  # the mean over data-parallel ranks: the loss of the global batch
        )
        self.log("loss", out.loss.detach(), prog_bar=True, logger=False)
        return out.loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        seconds = time.perf_counter() - self._step_started
        self.train_seconds += seconds
        tokens_per_s = self._step_tokens / max(seconds, 1e-9)  # this device's
        self.log("train/tokens_per_s", tokens_per_s, on_step=True)
        for name, value in self.mfu(self._step_tokens, self._step_head_positions, seconds).items():
            self.log(name, value, on_step=True)
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=True)

    def mfu(self, tokens: int, head_positions: int, seconds: float) -> dict[str, float]:
        """This device's MFU over ``tokens`` trained in ``seconds``, under both FLOP counts:

        * ``train/mfu_model``: model FLOPs, the LM head at every position; comparable with other
          frameworks (the convention of ``planning.plan.flops_per_token``);
        * ``train/mfu_executed``: the FLOPs run, the LM head only at the ``head_positions``.

        Empty without a peak (CPU) or a FLOP count.
        """
        if not (self.flops_per_token and self.peak_flops):
            return {}
        model = tokens * self.flops_per_token
        executed = executed_flops(self.config, model, tokens, head_positions)
        per_second = max(seconds, 1e-9) * self.peak_flops
        return {"train/mfu_model": model / per_second, "train/mfu_executed": executed / per_second}

    def run_mfu(self) -> dict[str, float]:
        """``mfu`` over the whole run so far (resumed runs included): the summary's numbers."""
        return self.mfu(self.train_tokens, self.train_head_positions, self.train_seconds)

    def on_validation_epoch_start(self) -> None:
        self._val_generator = torch.Generator(device=self.device).manual_seed(VAL_SEED)
        self._val_packed_text = True

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        batch_size = batch["input_ids"].shape[0]
        # A fixed stratified grid of t per batch and seeded masks: the same number every time.
        grid = (torch.arange(batch_size, device=self.device) + 0.5) / batch_size
        t = self._time_from_uniform(grid)
        out = self.objective(self.net, batch, t=t, generator=self._val_generator, training=False)
        self._val_packed_text &= "prompt_mask" not in batch  # SFT rows carry one (data.datamodule)
        self.val_loss.update(out.loss, weight=out.n_tokens)
        self.val_nll.update(out.nll, weight=out.n_tokens)
        self.val_acc.update(out.accuracy, weight=max(out.n_predicted, 1))

    def on_validation_epoch_end(self) -> None:
        nll = self.val_nll.compute()
        if not torch.isfinite(nll):  # before logging: no best.ckpt or summary of diverged weights
            raise NonFiniteLossError(
                f"validation NLL became {nll.item()} at step {self.global_step}: the weights diverged. "
                "The last good checkpoint is kept in checkpoints/. Try a lower optimizer.lr, a longer "
                "lr_schedule.warmup_steps, or trainer.gradient_clip_val."
            )
        metrics = {
            "val/loss": self.val_loss.compute(), "val/nll": nll, "val/masked_acc": self.val_acc.compute()
        }
        if self.byte_level and self._val_packed_text:
            # Bits per byte only where the tokens are bytes of text: pretraining on the byte
            # tokenizer (one EOS per document counts as a byte). SFT's NLL averages over answers
            # and their EOS padding, and an HF tokenizer's tokens span a varying number of bytes
            # that the batches do not carry, so there it would be a number in no unit.
            metrics["val/bpb"] = nll / math.log(2)
        self.log_dict(metrics, prog_bar=False)
        self.log("val_nll", nll, prog_bar=True, logger=False)
        for metric in (self.val_loss, self.val_nll, self.val_acc):
            metric.reset()
        self.last_validated_step = self.global_step

    def _time_from_uniform(self, u: torch.Tensor) -> torch.Tensor:
        noise = getattr(self.objective, "noise", None)
        return noise.time_from_uniform(u) if noise is not None else u

    # ------------------------------------------------------------ optimizer
    def configure_optimizers(self):
        decay = [p for p in self.net.parameters() if p.ndim >= 2]
        no_decay = [p for p in self.net.parameters() if p.ndim < 2]  # norms: never decayed
        optimizer = self.optimizer_factory([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}])
        if self.lr_schedule is None:
            return optimizer
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = LambdaLR(optimizer, partial(_lr_multiplier, self.lr_schedule, total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        # Lightning's AMP plugin refuses to clip for an optimizer that unscales internally (fused
        # AdamW), as if a loss scaler had to unscale first. bf16-mixed has no scaler: the gradients
        # are already true, so clip them as the plain loop would. fp16 (a scaler) keeps the refusal.
        if gradient_clip_val and getattr(self.trainer.precision_plugin, "scaler", None) is None and getattr(
            optimizer, "_step_supports_amp_scaling", False
        ):
            if gradient_clip_algorithm == "value":
                torch.nn.utils.clip_grad_value_(self.parameters(), gradient_clip_val)
            else:
                torch.nn.utils.clip_grad_norm_(self.parameters(), gradient_clip_val)
            return
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    # ------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, generator: torch.Generator | None = None):
        """Sample continuations of ``prompt`` (B, Lp) with the configured sampler."""
        if self.sampler is None:
            raise RuntimeError("no sampler configured; pass sampler=<name>")
        was_training = self.training
        self.eval()
        try:
            # Eager even with model.compile: every call has new shapes, and KV-cache hooks would
            # recompile each block per layer and window (past torch's limit) for a few samples.
            with torch.compiler.set_stance("force_eager"):
                return self.decoding.generate(self.net, prompt.to(self.device), self.sampler, generator)
        finally:
            self.train(was_training)

    # ----------------------------------------------------------- checkpoint
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Enough to rebuild the model and its tokenizer without Hydra or the original config,
        # and the running totals that a resumed run continues from.
        checkpoint["lit_illada"] = {
            "model_config": self.config.to_dict(),
            "run_config": self.run_config,
            "counters": {
                "train_tokens": self.train_tokens,
                "train_head_positions": self.train_head_positions,
                "train_seconds": self.train_seconds,
                "last_validated_step": self.last_validated_step,
            },
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        counters = checkpoint.get("lit_illada", {}).get("counters", {})
        self.train_tokens = counters.get("train_tokens", self.train_tokens)
        # Unknown in a checkpoint written before this counter: its steps count as the full head.
        self.train_head_positions = counters.get("train_head_positions", self.train_tokens)
        self.train_seconds = counters.get("train_seconds", self.train_seconds)
        self.last_validated_step = counters.get("last_validated_step", self.last_validated_step)


def _lr_multiplier(schedule: Callable[[int, int], float], total_steps: int, step: int) -> float:
    return schedule(step, total_steps)
