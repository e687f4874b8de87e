"""Lightning DataModules for pretraining (packed token streams) and SFT (prompt/response rows).

Constructor arguments are the ``data.*`` config keys. Batches are dicts:

- pretraining: ``{"input_ids": LongTensor (B, seq_len)}``
- SFT: ``{"input_ids": LongTensor (B, seq_len), "prompt_mask": BoolTensor (B, seq_len)}``

The train loader shuffles as a pure function of (seed, epoch), the seed being the one
``seed_everything`` set, and drops the last partial batch; its position within an epoch is
saved in every checkpoint (``data.resumable``). Val and test loaders keep the split's order.
"""

from __future__ import annotations

import logging
import os

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from lit_illada.data.cache import ensure_tokenized
from lit_illada.data.corpora import Corpus
from lit_illada.data.resumable import resumable_loader
from lit_illada.data.sft import SFTSource, encode_sft, split_examples
from lit_illada.data.splits import check_fractions, check_split
from lit_illada.data.tokenizers import Tokenizer
from lit_illada.data.torch_datasets import PackedSequenceDataset, SFTDataset

log = logging.getLogger(__name__)

# The splits a Trainer stage reads; they are built in setup() so problems surface at start-up.
STAGE_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ()}


def _check_positive(key: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{key}={value!r}: must be a positive integer")


class _SplitDataModule(L.LightningDataModule):
    """Shared loader logic; subclasses say how to build one split's dataset."""

    def __init__(
        self, tokenizer: Tokenizer, seq_len: int, batch_size: int, num_workers: int, val_batches: int | None
    ) -> None:
        super().__init__()
        if not isinstance(tokenizer, Tokenizer):
            raise TypeError(f"tokenizer must be a lit_illada Tokenizer, got {type(tokenizer).__name__}")
        _check_positive("data.seq_len", seq_len)
        _check_positive("data.batch_size", batch_size)
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(
                f"data.num_workers={num_workers!r}: must be 0 (load in the main process) or more"
            )
        if val_batches is not None:
            _check_positive("data.val_batches", val_batches)
        self.tokenizer = tokenizer
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_batches = val_batches
        self._datasets: dict[str, Dataset] = {}

    def _build_dataset(self, split: str) -> Dataset:
        raise NotImplementedError

    def dataset(self, split: str) -> Dataset:
        """The dataset of ``split``, built on first use and checked to be usable."""
        check_split(split)
        if split not in self._datasets:
            dataset = self._build_dataset(split)
            # Train drops partial batches, so it needs a full one; val/test need one row.
            minimum = self.batch_size if split == "train" else 1
            if len(dataset) < minimum:
                raise ValueError(
                    f"the {split} split has {len(dataset)} rows of data.seq_len={self.seq_len} tokens, "
                    f"fewer than {minimum}{' (data.batch_size)' if split == 'train' else ''}; "
                    f"{self._too_small_advice(split)}"
                )
            self._datasets[split] = dataset
        return self._datasets[split]

    def _too_small_advice(self, split: str) -> str:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        for split in STAGE_SPLITS.get(stage or "fit", ()):
            self.dataset(split)

    def num_sequences(self, split: str) -> int:
        return len(self.dataset(split))

    @property
    def num_train_sequences(self) -> int:
        return self.num_sequences("train")

    @property
    def num_val_sequences(self) -> int:
        return self.num_sequences("val")

    def _loader_kwargs(self) -> dict:
        return dict(
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def _eval_loader(self, dataset: Dataset) -> DataLoader:
        # Its own generator: making an iterator would otherwise draw from torch's global RNG, and
        # a resumed run (new worker processes) would draw at other times than the run it continues.
        generator = torch.Generator().manual_seed(0)
        return DataLoader(dataset, shuffle=False, generator=generator, **self._loader_kwargs())

    def train_dataloader(self) -> DataLoader:
        # Lightning's seed_everything sets PL_GLOBAL_SEED; its own DistributedSampler reads it too.
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
        ranks, rank = (1, 0) if self.trainer is None else (self.trainer.world_size, self.trainer.global_rank)
        kwargs = {**self._loader_kwargs(), "drop_last": True}
        return resumable_loader(self.dataset("train"), seed, num_replicas=ranks, rank=rank, **kwargs)

    def val_dataloader(self) -> DataLoader:
        dataset = self.dataset("val")
        limit = None if self.val_batches is None else self.val_batches * self.batch_size
        if limit is not None and limit < len(dataset):
            # Evenly spaced rows, not the first ones: the first rows come from a few files only.
            rows = np.linspace(0, len(dataset) - 1, num=limit).round().astype(int)
            dataset = Subset(dataset, np.unique(rows).tolist())
        return self._eval_loader(dataset)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.dataset("test"))


class PretrainDataModule(_SplitDataModule):
    """Packed sequences of ``seq_len`` tokens cut from each split's cached token stream.

    ``val_batches`` caps validation at that many batches (evenly spaced over the split).
    """

    def __init__(
        self,
        corpus: Corpus,
        tokenizer: Tokenizer,
        seq_len: int = 256,
        batch_size: int = 32,
        num_workers: int = 0,
        cache_dir: str | None = None,
        val_batches: int | None = None,
    ) -> None:
        super().__init__(tokenizer, seq_len, batch_size, num_workers, val_batches)
        if not isinstance(corpus, Corpus):
            raise TypeError(
                f"data.corpus must have documents() and fingerprint(), got {type(corpus).__name__}"
            )
        self.corpus = corpus
        self.cache_dir = cache_dir

    def prepare_data(self) -> None:
        # Lightning calls this on one process only: tokenize there, and other ranks hit the cache.
        for split in ("train", "val"):
            ensure_tokenized(self.corpus, self.tokenizer, split, self.cache_dir)

    def _build_dataset(self, split: str) -> PackedSequenceDataset:
        return PackedSequenceDataset(
            ensure_tokenized(self.corpus, self.tokenizer, split, self.cache_dir), self.seq_len
        )

    def _too_small_advice(self, split: str) -> str:
        return f"lower data.seq_len or data.batch_size, or use a bigger corpus than {self.corpus!r}"


class SFTDataModule(_SplitDataModule):
    """Rows ``[BOS] prompt response [EOS] EOS-padding`` with a prompt mask (see ``sft``).

    A source with its own splits (``StdlibFunctionSFTSource``) keeps them; otherwise each
    example goes to val / test / train by a stable hash of its index, with ``val_fraction``
    and ``test_fraction``. Examples longer than ``seq_len`` are dropped (and counted in
    ``num_dropped``) unless ``truncate`` lets their response be cut.
    """

    def __init__(
        self,
        source: SFTSource,
        tokenizer: Tokenizer,
        seq_len: int = 512,
        batch_size: int = 16,
        num_workers: int = 0,
        val_fraction: float = 0.05,
        test_fraction: float = 0.0,
        truncate: bool = False,
        val_batches: int | None = None,
    ) -> None:
        super().__init__(tokenizer, seq_len, batch_size, num_workers, val_batches)
        if not isinstance(source, SFTSource):
            raise TypeError(f"data.source must have has_splits and examples(), got {type(source).__name__}")
        check_fractions(val_fraction, test_fraction, "data")
        self.source = source
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.truncate = truncate
        self.num_dropped: dict[str, int] = {}

    def _build_dataset(self, split: str) -> SFTDataset:
        examples = split_examples(self.source, split, self.val_fraction, self.test_fraction)
        encoded = encode_sft(examples, self.tokenizer, self.seq_len, self.truncate)
        self.num_dropped[split] = encoded.num_dropped
        if encoded.num_dropped:
            log.warning(
                "SFT %s split: dropped %d of %d examples longer than data.seq_len=%d%s",
                split,
                encoded.num_dropped,
                len(examples),
                self.seq_len,
                "" if self.truncate else " (data.truncate=true keeps those whose prompt fits)",
            )
        return SFTDataset(encoded)

    def _too_small_advice(self, split: str) -> str:
        advice = f"{self.num_dropped.get(split, 0)} examples were dropped as longer than data.seq_len; "
        advice += "raise data.seq_len, set data.truncate=true, or lower data.batch_size"
        if not self.source.has_splits and split != "train":
            advice += f", or raise data.{split}_fraction"
        return advice
