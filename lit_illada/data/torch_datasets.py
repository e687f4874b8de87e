"""``torch.utils.data.Dataset`` views over packed token streams and encoded SFT rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from lit_illada.data.cache import load_tokens
from lit_illada.data.packing import pack_sequences
from lit_illada.data.sft import EncodedSFT


class PackedSequenceDataset(Dataset):
    """Row ``i`` of the cached token stream at ``path`` packed into ``seq_len`` windows.

    The stream is memory-mapped, and re-opened in each worker rather than pickled into it,
    so worker start-up stays cheap however big the corpus is.
    """

    def __init__(self, path: Path, seq_len: int) -> None:
        self.path = path
        self.seq_len = seq_len
        self._sequences: np.ndarray | None = None

    @property
    def sequences(self) -> np.ndarray:
        if self._sequences is None:
            self._sequences = pack_sequences(load_tokens(self.path), self.seq_len)
        return self._sequences

    @property
    def num_tokens(self) -> int:
        return self.sequences.size

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input_ids": torch.from_numpy(self.sequences[index].astype(np.int64))}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_sequences"] = None  # the memory map: re-opened on first use in the worker
        return state


class SFTDataset(Dataset):
    """Rows of an ``EncodedSFT``: ``input_ids`` (long) and ``prompt_mask`` (bool)."""

    def __init__(self, encoded: EncodedSFT) -> None:
        self.encoded = encoded

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {
            "input_ids": torch.from_numpy(self.encoded.input_ids[index]),
            "prompt_mask": torch.from_numpy(self.encoded.prompt_mask[index]),
        }
