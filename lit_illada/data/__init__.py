"""Data for lit_illada: tokenizers, corpora, the token cache, SFT pairs and the DataModules.

Nothing here imports Hydra or W&B; Lightning appears only in ``datamodule``. May import the core
and sampling-free torch code only: never config, training, checkpoints, evaluation or a command.
"""

from typing import TYPE_CHECKING, Any

from lit_illada.data.corpora import Corpus, HFCorpus, PyStdlibCorpus, TextCorpus
from lit_illada.data.sft import JsonlSFTSource, SFTExample, SFTSource, StdlibFunctionSFTSource
from lit_illada.data.tokenizers import ByteTokenizer, HFTokenizer, Tokenizer

if TYPE_CHECKING:
    from lit_illada.data.datamodule import PretrainDataModule, SFTDataModule

__all__ = [
    "ByteTokenizer",
    "Corpus",
    "HFCorpus",
    "HFTokenizer",
    "JsonlSFTSource",
    "PretrainDataModule",
    "PyStdlibCorpus",
    "SFTDataModule",
    "SFTExample",
    "SFTSource",
    "StdlibFunctionSFTSource",
    "TextCorpus",
    "Tokenizer",
]


def __getattr__(name: str) -> Any:
    # Importing Lightning takes seconds; tokenizer-only users (generation, scripts) skip it.
    if name in ("PretrainDataModule", "SFTDataModule"):
        from lit_illada.data import datamodule  # noqa: PLC0415 - Lightning is slow to import

        return getattr(datamodule, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
