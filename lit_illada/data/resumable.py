"""A train loader whose order is a pure function of (seed, epoch) and whose position survives a kill.

Lightning saves ``state_dict()`` of every train loader that has one into each checkpoint
(``loops.fit_loop.state_dict.combined_loader``) and hands it back to ``load_state_dict`` on
resume, before the epoch's iterator is made. The state is two numbers, the epoch and the
batches this rank has consumed in it; the resumed iterator starts right after them, without
loading the skipped rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler


class ResumableSampler(DistributedSampler):
    """DistributedSampler that can start an epoch part-way through.

    The permutation is ``randperm(n, seed + epoch)``, this rank taking every ``num_replicas``-th
    index, as in torch. Being a DistributedSampler, Lightning keeps it under DDP/FSDP instead of
    injecting its own, and calls ``set_epoch`` on it at every epoch.
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self._resume_at: tuple[int, int] | None = None  # (epoch, indices already consumed)
        self.iter_epoch = 0  # the epoch and skip of the iterator in use, read by the loader
        self.skipped = 0

    def resume_at(self, epoch: int, consumed: int) -> None:
        """Skip ``consumed`` indices of the next iterator if it is over ``epoch`` (Lightning
        sets the epoch; a resume at an epoch's end goes on with the next one)."""
        self._resume_at = (epoch, consumed)

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        resume, self._resume_at = self._resume_at, None  # applies to one iterator only
        self.iter_epoch = self.epoch
        self.skipped = resume[1] if resume is not None and resume[0] == self.epoch else 0
        return iter(indices[self.skipped :])


class ResumableDataLoader(DataLoader):
    """A DataLoader over a ``ResumableSampler`` with Lightning's stateful-loader interface.

    Batches are counted as the loader hands them out: Lightning fetches no batch ahead for a
    loader with a length, so at a checkpoint the count is exactly the batches trained on.
    """

    sampler: ResumableSampler

    def __init__(self, dataset: Dataset, sampler: ResumableSampler, **kwargs: Any) -> None:
        if not isinstance(sampler, ResumableSampler):
            raise TypeError(f"ResumableDataLoader needs a ResumableSampler, got {type(sampler).__name__}")
        super().__init__(dataset, sampler=sampler, **kwargs)
        self._position: tuple[int, int] | None = None  # (epoch, batches consumed in it)

    def __iter__(self) -> Iterator[Any]:
        return self._counted()

    def _counted(self) -> Iterator[Any]:
        # DataLoader's iterator is made at the first next(), not at iter(): on resume Lightning
        # calls iter() before set_epoch, and worker processes draw indices as soon as it exists.
        for n, batch in enumerate(super().__iter__(), 1):
            self._position = (self.sampler.iter_epoch, self.sampler.skipped // self.batch_size + n)
            yield batch

    def state_dict(self) -> dict[str, int]:
        epoch, batches = self._position or (self.sampler.epoch, 0)
        ranks = self.sampler.num_replicas
        return {"epoch": epoch, "batches": batches, "batch_size": self.batch_size, "ranks": ranks}

    def load_state_dict(self, state: dict[str, int]) -> None:
        epoch, batches = state["epoch"], state["batches"]
        saved = (state.get("batch_size", self.batch_size), state.get("ranks", self.sampler.num_replicas))
        if saved != (self.batch_size, self.sampler.num_replicas):
            # Another global batch: keep the number of rows seen, the exact order is lost.
            batches = batches * saved[0] * saved[1] // (self.batch_size * self.sampler.num_replicas)
            warnings.warn(
                f"resuming with data.batch_size={self.batch_size} on {self.sampler.num_replicas} rank(s) "
                f"from a checkpoint of batch size {saved[0]} on {saved[1]}: the epoch continues after the "
                f"same number of rows, not in exactly the uninterrupted order",
                stacklevel=2,
            )
        self._position = (epoch, batches)
        if batches < len(self):  # a finished epoch leaves nothing to skip
            self.sampler.resume_at(epoch, batches * self.batch_size)


def resumable_loader(
    dataset: Dataset, seed: int, num_replicas: int, rank: int, **kwargs: Any
) -> ResumableDataLoader:
    """The shuffled train loader; its own generator keeps ``iter()`` off torch's global RNG,
    whose state is saved and restored with the checkpoint (``RNGStates``)."""
    sampler = ResumableSampler(dataset, num_replicas=num_replicas, rank=rank, seed=seed)
    return ResumableDataLoader(dataset, sampler, generator=torch.Generator().manual_seed(seed), **kwargs)
