"""Tests for lit_illada.data on real data: the Python stdlib, files written to tmp_path, and a
BPE tokenizer trained here. No network, no mocks."""

from __future__ import annotations

import ast
import json
import pickle
import re
import shutil
import sysconfig
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lit_illada.data import (
    ByteTokenizer,
    HFCorpus,
    HFTokenizer,
    JsonlSFTSource,
    PretrainDataModule,
    PyStdlibCorpus,
    SFTDataModule,
    SFTExample,
    StdlibFunctionSFTSource,
    TextCorpus,
)
from lit_illada.data.cache import cache_path, tokenized_split
from lit_illada.data.packing import pack_sequences, token_dtype, tokenize_documents
from lit_illada.data.sft import encode_sft, fitting_seq_len, split_examples
from lit_illada.data.splits import split_of, unit_interval_hash

STDLIB = Path(sysconfig.get_paths()["stdlib"])
# A fixed handful of stdlib modules (≈250 kB): the small corpus for fast tests.
SMALL_STDLIB_FILES = [
    "bisect.py",
    "colorsys.py",
    "copy.py",
    "fnmatch.py",
    "glob.py",
    "graphlib.py",
    "heapq.py",
    "keyword.py",
    "numbers.py",
    "opcode.py",
    "operator.py",
    "queue.py",
    "sched.py",
    "shlex.py",
    "statistics.py",
    "string.py",
    "textwrap.py",
    "json/__init__.py",
    "json/decoder.py",
    "json/encoder.py",
    "json/scanner.py",
    "json/tool.py",
    "genericpath.py",
    "copyreg.py",
]

BYTE = ByteTokenizer()


@pytest.fixture(autouse=True)
def isolated_caches(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep every cache (ours and Hugging Face datasets') out of the home directory."""
    import datasets

    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("LIT_ILLADA_CACHE", str(cache / "lit_illada"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache / "hf")
    return cache


@pytest.fixture(scope="module")
def small_stdlib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stdlib")
    for relative in SMALL_STDLIB_FILES:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(STDLIB / relative, root / relative)
    return root


@pytest.fixture(scope="module")
def bpe_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real byte-level BPE tokenizer.json trained on a few stdlib files."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=500,
        special_tokens=["<|endoftext|>", "<|mdm_mask|>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = [(STDLIB / name).read_text(encoding="utf-8") for name in SMALL_STDLIB_FILES[:8]]
    tokenizer.train_from_iterator(texts, trainer)
    path = tmp_path_factory.mktemp("bpe") / "tokenizer.json"
    tokenizer.save(str(path))
    return path


# --- tokenizers ---------------------------------------------------------------------------


@given(st.text())
def test_byte_tokenizer_round_trips_any_text(text: str) -> None:
    ids = BYTE.encode(text)
    assert BYTE.decode(ids) == text
    assert BYTE.encode_array(text).tolist() == ids


def test_byte_tokenizer_specials() -> None:
    specials = [BYTE.pad_id, BYTE.bos_id, BYTE.eos_id, BYTE.mask_id]
    assert len(set(specials)) == 4 and all(256 <= i < BYTE.vocab_size for i in specials)
    ids = [BYTE.bos_id, *BYTE.encode("héllo"), BYTE.mask_id, BYTE.eos_id, BYTE.pad_id]
    assert BYTE.decode(ids) == "héllo"
    assert BYTE.decode(torch.tensor(ids), skip_special=False) == "<bos>héllo<mask><eos><pad>"
    with pytest.raises(ValueError, match="outside"):
        BYTE.decode([BYTE.vocab_size])


def test_hf_tokenizer_from_trained_bpe(bpe_path: Path) -> None:
    tokenizer = HFTokenizer(str(bpe_path))
    vocab = {"<|endoftext|>": tokenizer.eos_id, "<|mdm_mask|>": tokenizer.mask_id, "<pad>": tokenizer.pad_id}
    assert tokenizer.bos_id == tokenizer.eos_id  # no BOS in this vocabulary: falls back to EOS
    assert len(set(vocab.values())) == 3 and max(vocab.values()) < tokenizer.vocab_size
    assert not tokenizer.is_byte_level

    text = "def f(x):\n    return x * 2  # ünïcode\n"
    ids = tokenizer.encode(text)
    assert len(ids) < len(text.encode())  # BPE actually merges
    assert tokenizer.decode(ids) == text
    assert tokenizer.encode_array(text).tolist() == ids
    assert [a.tolist() for a in tokenizer.encode_batch([text, "x"])] == [ids, tokenizer.encode("x")]
    assert tokenizer.decode([tokenizer.mask_id, *ids, tokenizer.eos_id]) == text

    same_from_folder = HFTokenizer(str(bpe_path.parent))
    assert same_from_folder.name == tokenizer.name and tokenizer.name.startswith("hf-")
    assert HFTokenizer(str(bpe_path), mask_id=5).name != tokenizer.name  # specials are in the key


def test_hf_tokenizer_errors(bpe_path: Path, tmp_path: Path) -> None:
    config = json.loads(bpe_path.read_text())
    config["added_tokens"] = [t for t in config["added_tokens"] if t["content"] != "<|mdm_mask|>"]
    del config["model"]["vocab"]["<|mdm_mask|>"]
    no_mask = tmp_path / "no_mask.json"
    no_mask.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="tokenizer.mask_id"):
        HFTokenizer(str(no_mask))
    assert HFTokenizer(str(no_mask), mask_token="<pad>").mask_id == HFTokenizer(str(bpe_path)).pad_id
    with pytest.raises(ValueError, match="tokenizer.eos_token='<nope>'"):
        HFTokenizer(str(bpe_path), eos_token="<nope>")
    with pytest.raises(FileNotFoundError, match="tokenizer.path"):
        HFTokenizer(str(tmp_path / "missing.json"))
    settings = tmp_path / "settings.json"  # JSON, but not a tokenizer: the key and the file are named
    settings.write_text(json.dumps({"lr": 0.001}))
    with pytest.raises(ValueError, match=r"tokenizer.path=.*settings.json is not a Hugging Face tokenizer"):
        HFTokenizer(str(settings))
    folder = tmp_path / "broken_config"
    folder.mkdir()
    shutil.copy(bpe_path, folder / "tokenizer.json")
    (folder / "tokenizer_config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"tokenizer_config.json is not valid JSON"):
        HFTokenizer(str(folder))


# --- splits and corpora -------------------------------------------------------------------


def test_split_hash_is_stable_across_processes() -> None:
    # Golden values: a switch to Python's salted hash() or another digest would reshuffle splits.
    assert unit_interval_hash("json/decoder.py") == pytest.approx(0.73652, abs=1e-5)
    assert [split_of(str(i), 0.2, 0.2) for i in range(6)] == [
        "train",
        "test",
        "train",
        "train",
        "val",
        "train",
    ]


def test_stdlib_corpus_splits_are_deterministic_disjoint_and_sized() -> None:
    corpus = PyStdlibCorpus()
    splits = {split: corpus.split_files(split) for split in ("train", "val", "test")}
    assert all(splits.values())
    assert sum(map(len, splits.values())) == len(corpus.files) == len(set().union(*map(set, splits.values())))
    assert 0.01 < len(splits["val"]) / len(corpus.files) < 0.035
    assert splits == {split: PyStdlibCorpus().split_files(split) for split in splits}
    assert splits["train"] == sorted(splits["train"])
    assert not any("site-packages" in f for f in corpus.files)
    assert PyStdlibCorpus(val_fraction=0.05).fingerprint() != corpus.fingerprint()

    without_tests = PyStdlibCorpus(include_tests=False)
    assert 0 < len(without_tests.files) < len(corpus.files)
    assert not any(f.startswith("test/") or "/test_" in f for f in without_tests.files)


def test_corpus_fraction_errors_name_the_key() -> None:
    with pytest.raises(ValueError, match="data.corpus.val_fraction"):
        PyStdlibCorpus(val_fraction=0.6, test_fraction=0.5)
    with pytest.raises(ValueError, match="data.corpus.root"):
        PyStdlibCorpus(root="/nonexistent/folder")


def _write_mixed_corpus(folder: Path) -> list[str]:
    """Two .txt documents, three .jsonl records, two .parquet rows; returns all texts."""
    folder.mkdir(exist_ok=True)
    (folder / "a.txt").write_text("first line\nsecond line\n\nafter a blank line\n")
    (folder / "b.txt").write_text("üñíçødé document\n")
    records = [{"text": f"json doc {i}", "id": i} for i in range(3)]
    (folder / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    pq.write_table(pa.table({"text": ["parquet doc 0", "parquet doc 1"], "n": [0, 1]}), folder / "d.parquet")
    return (
        [(folder / "a.txt").read_text(), "üñíçødé document\n"]
        + [r["text"] for r in records]
        + [
            "parquet doc 0",
            "parquet doc 1",
        ]
    )


def test_text_corpus_reads_txt_jsonl_parquet(tmp_path: Path) -> None:
    expected = _write_mixed_corpus(tmp_path / "corpus")
    corpus = TextCorpus(str(tmp_path / "corpus" / "*"), val_fraction=0.3, test_fraction=0.3)
    by_split = {split: list(corpus.documents(split)) for split in ("train", "val", "test")}
    assert sorted(sum(by_split.values(), [])) == sorted(expected)  # each .txt is one document
    assert all(by_split.values())
    assert by_split == {split: list(corpus.documents(split)) for split in by_split}

    only_jsonl = TextCorpus([str(tmp_path / "corpus" / "c.jsonl")], val_fraction=0.0, test_fraction=0.0)
    assert list(only_jsonl.documents("train")) == ["json doc 0", "json doc 1", "json doc 2"]
    assert only_jsonl.fingerprint() != corpus.fingerprint()


def test_text_corpus_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"data.corpus.paths=.*no files matched"):
        TextCorpus(str(tmp_path / "*.txt"))
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match=r"unsupported file type.*\.csv"):
        TextCorpus(str(tmp_path / "data.csv"))
    (tmp_path / "data.jsonl").write_text(json.dumps({"body": "x", "title": "y"}) + "\n")
    with pytest.raises(ValueError, match=r"data.corpus.text_field='text'.*\['body', 'title'\]"):
        list(TextCorpus(str(tmp_path / "data.jsonl")).documents("train"))


def test_empty_split_fails_clearly_and_caches_nothing(tmp_path: Path) -> None:
    (tmp_path / "only.txt").write_text("a single document")
    corpus = TextCorpus(str(tmp_path / "only.txt"), val_fraction=0.01, test_fraction=0.0)
    assert split_of("0", 0.01, 0.0) == "train"
    with pytest.raises(ValueError, match=r"TextCorpus.*no documents in split 'val'"):
        tokenized_split(corpus, BYTE, "val", tmp_path / "cache")
    assert not list((tmp_path / "cache").iterdir())  # no partial file left behind


def test_hf_corpus_reads_a_local_dataset_folder(tmp_path: Path) -> None:
    # The hub is unreachable here; a local folder goes through the same load_dataset call.
    folder = tmp_path / "dataset"
    folder.mkdir()
    pq.write_table(pa.table({"text": [f"train {i}" for i in range(10)]}), folder / "train.parquet")
    pq.write_table(pa.table({"text": ["val 0", "", "val 2"]}), folder / "validation.parquet")

    for streaming in (False, True):
        corpus = HFCorpus(str(folder), streaming=streaming)
        assert list(corpus.documents("val")) == ["val 0", "val 2"]  # empty documents skipped
        assert len(list(corpus.documents("train"))) == 10
        with pytest.raises(RuntimeError, match=r"data.corpus.name=.*'test'.*data.corpus.split_map"):
            list(corpus.documents("test"))

    capped = HFCorpus(str(folder), max_documents=3)
    assert list(capped.documents("train")) == ["train 0", "train 1", "train 2"]
    carved = HFCorpus(str(folder), split_map={"train": "train[:80%]", "val": "train[80%:]"})
    assert len(list(carved.documents("train"))) == 8 and len(list(carved.documents("val"))) == 2
    with pytest.raises(ValueError, match=r"data.corpus.split_map=.* has no entry for 'test'"):
        list(carved.documents("test"))
    with pytest.raises(ValueError, match="data.corpus.text_field='content'"):
        list(HFCorpus(str(folder), text_field="content").documents("train"))


# --- packing and cache --------------------------------------------------------------------


def test_documents_are_separated_by_eos() -> None:
    stream = tokenize_documents(["ab", "é"], BYTE)
    assert stream.tolist() == [97, 98, BYTE.eos_id, 0xC3, 0xA9, BYTE.eos_id]
    assert stream.dtype == np.uint16 and token_dtype(100_000) == np.uint32


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=20), st.integers(1, 16))
def test_packed_rows_are_a_prefix_of_the_stream(documents: list[str], seq_len: int) -> None:
    stream = tokenize_documents(documents, BYTE)
    packed = pack_sequences(stream, seq_len)
    assert packed.shape == (len(stream) // seq_len, seq_len)
    assert stream[: packed.size].tolist() == packed.reshape(-1).tolist()
    assert (stream == BYTE.eos_id).sum() == len(documents)


def test_full_stdlib_byte_stream_and_warm_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = PyStdlibCorpus()
    cache = tmp_path / "cache"
    stream = tokenized_split(corpus, BYTE, "val", cache)
    documents = list(corpus.documents("val"))
    assert len(stream) == sum(len(d.encode()) for d in documents) + len(documents)
    assert (stream == BYTE.eos_id).sum() == len(documents)
    assert BYTE.decode(stream[: len(documents[0].encode())]) == documents[0]

    train = tokenized_split(corpus, BYTE, "train", cache)
    assert len(train) > 20_000_000  # the whole stdlib, ~30 MB of source
    path = cache_path(corpus, BYTE, "train", cache)
    mtime = path.stat().st_mtime_ns

    def refuse(*args: object) -> None:
        raise AssertionError("a warm cache must not tokenize again")

    monkeypatch.setattr(ByteTokenizer, "encode_batch", refuse)
    again = tokenized_split(corpus, BYTE, "train", cache)
    assert isinstance(again, np.memmap) and np.array_equal(again, train)
    assert path.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        cache_path(corpus, BYTE, s, cache).name for s in ("train", "val")
    )  # no temporary files left


def test_cache_key_follows_corpus_and_tokenizer(small_stdlib: Path, bpe_path: Path, tmp_path: Path) -> None:
    corpus = PyStdlibCorpus(root=str(small_stdlib), val_fraction=0.2)
    bpe = HFTokenizer(str(bpe_path))
    paths = {
        cache_path(corpus, BYTE, "train", tmp_path),
        cache_path(corpus, BYTE, "val", tmp_path),
        cache_path(corpus, bpe, "train", tmp_path),
        cache_path(PyStdlibCorpus(root=str(small_stdlib), val_fraction=0.3), BYTE, "train", tmp_path),
    }
    assert len(paths) == 4

    stream = tokenized_split(corpus, bpe, "train", tmp_path)
    documents = list(corpus.documents("train"))
    assert (stream == bpe.eos_id).sum() == len(documents)
    assert bpe.decode(stream[: np.flatnonzero(stream == bpe.eos_id)[0]]) == documents[0]


# --- SFT ----------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=30), st.text(max_size=30), st.integers(2, 48))
def test_sft_rows_layout(prompt: str, response: str, seq_len: int) -> None:
    encoded = encode_sft([SFTExample(prompt, response)], BYTE, seq_len)
    prompt_ids, response_ids = BYTE.encode(prompt), BYTE.encode(response)
    fits = 1 + len(prompt_ids) + len(response_ids) + 1 <= seq_len
    assert (len(encoded), encoded.num_dropped) == ((1, 0) if fits else (0, 1))
    if not fits:
        return
    ids, mask = encoded.input_ids[0], encoded.prompt_mask[0]
    prompt_end = 1 + len(prompt_ids)
    assert ids.dtype == np.int64 and mask.dtype == bool and ids.shape == mask.shape == (seq_len,)
    assert mask.tolist() == [True] * prompt_end + [False] * (seq_len - prompt_end)
    assert ids[0] == BYTE.bos_id
    assert BYTE.decode(ids[mask]) == prompt
    response_end = prompt_end + len(response_ids)
    assert BYTE.decode(ids[prompt_end:response_end]) == response
    assert (ids[response_end:] == BYTE.eos_id).all() and response_end < seq_len


def test_sft_truncation_keeps_prompt_and_cuts_response() -> None:
    examples = [SFTExample("abc", "0123456789"), SFTExample("a" * 20, "x")]
    encoded = encode_sft(examples, BYTE, seq_len=8, truncate=True)
    assert (len(encoded), encoded.num_truncated, encoded.num_dropped) == (1, 1, 1)  # long prompt: dropped
    assert BYTE.decode(encoded.input_ids[0], skip_special=False) == "<bos>abc0123"


def test_jsonl_sft_source(tmp_path: Path) -> None:
    path = tmp_path / "sft.jsonl"
    chat = {
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4"},
        ]
    }
    path.write_text(json.dumps({"prompt": "Hi", "response": "Hello"}) + "\n\n" + json.dumps(chat) + "\n")
    examples = list(JsonlSFTSource(str(path)).examples())
    assert examples == [
        SFTExample("Hi", "Hello"),
        SFTExample("<|system|>\nBe terse.\n<|user|>\n2+2?\n<|assistant|>\n", "4"),
    ]

    path.write_text(
        json.dumps({"prompt": "Hi", "response": "x"}) + "\n" + json.dumps({"prompt": "Hi"}) + "\n"
    )
    with pytest.raises(
        ValueError, match=r"sft.jsonl:2: field 'response' is missing.*data.source.response_field"
    ):
        list(JsonlSFTSource(str(path)).examples())
    with pytest.raises(FileNotFoundError, match="data.source.path"):
        JsonlSFTSource(str(tmp_path / "missing.jsonl"))


def test_sft_text_that_is_the_mask_token_is_refused_with_its_line(bpe_path: Path, tmp_path: Path) -> None:
    """Generation refuses a prompt holding the mask id; training data holding it is refused too."""
    tokenizer = HFTokenizer(str(bpe_path))
    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "a <|mdm_mask|>"}]
    chat = {"messages": turns}
    path = tmp_path / "sft.jsonl"
    path.write_text(json.dumps({"prompt": "a", "response": "b"}) + "\n" + json.dumps(chat) + "\n")
    source = JsonlSFTSource(str(path))
    refused = re.escape("sft.jsonl:2: the response contains '<|mdm_mask|>', which the tokenizer encodes")
    with pytest.raises(ValueError, match=refused):
        encode_sft(source.examples(), tokenizer, 64)
    with pytest.raises(ValueError, match=refused):  # data.seq_len=auto reads the data first
        fitting_seq_len(source, tokenizer)
    assert len(encode_sft(source.examples(), BYTE, 64)) == 2  # bytes never encode to the byte mask id
    without_file = re.escape("the example with prompt 'x <|mdm_mask|>'")  # no file: named by its prompt
    with pytest.raises(ValueError, match=without_file):
        encode_sft([SFTExample("x <|mdm_mask|>", "y")], tokenizer, 64)


def test_stdlib_function_source_yields_real_functions(small_stdlib: Path, tmp_path: Path) -> None:
    corpus = PyStdlibCorpus(root=str(small_stdlib), val_fraction=0.2, test_fraction=0.2)
    source = StdlibFunctionSFTSource(corpus, cache_dir=str(tmp_path))
    examples = list(source.examples())
    assert len(examples) > 100
    assert {
        split: len(list(source.examples(split))) > 0 for split in ("train", "val", "test")
    } == dict.fromkeys(("train", "val", "test"), True)
    parsed = 0
    for example in examples:
        assert example.prompt.lstrip().startswith(("def ", "async def "))
        function = ast.parse(textwrap.dedent(example.prompt + example.response)).body[0]
        assert isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
        docstring = ast.get_docstring(function, clean=False)
        assert docstring is not None and docstring.splitlines()[0] in example.prompt
        assert example.response.strip() not in ("", "pass", "...")
        parsed += 1
    assert parsed == len(examples)  # every pair is its function's own source, so it all parses
    assert list(source.examples()) == examples  # second read comes from the JSONL cache


# --- DataModules --------------------------------------------------------------------------


def test_pretrain_datamodule_batches(small_stdlib: Path, tmp_path: Path) -> None:
    corpus = PyStdlibCorpus(root=str(small_stdlib), val_fraction=0.2, test_fraction=0.2)
    module = PretrainDataModule(
        corpus, BYTE, seq_len=64, batch_size=8, cache_dir=str(tmp_path), val_batches=2
    )
    module.prepare_data()
    module.setup("fit")
    batch = next(iter(module.train_dataloader()))
    assert set(batch) == {"input_ids"}
    assert batch["input_ids"].shape == (8, 64) and batch["input_ids"].dtype == torch.long
    assert len(module.train_dataloader()) == module.num_train_sequences // 8
    val_batches = list(module.val_dataloader())
    assert len(val_batches) == 2 and all(b["input_ids"].shape == (8, 64) for b in val_batches)
    assert torch.equal(val_batches[0]["input_ids"], next(iter(module.val_dataloader()))["input_ids"])
    assert next(iter(module.test_dataloader()))["input_ids"].shape[1] == 64

    # Workers get the dataset pickled (spawn/forkserver): the memory map must not travel with it.
    train = module.dataset("train")
    pickled = pickle.dumps(train)
    assert len(pickled) < 1_000 < train.num_tokens
    assert torch.equal(pickle.loads(pickled)[3]["input_ids"], train[3]["input_ids"])


def test_train_order_follows_the_global_seed(small_stdlib: Path, tmp_path: Path) -> None:
    import lightning as L

    corpus = PyStdlibCorpus(root=str(small_stdlib), val_fraction=0.2)
    module = PretrainDataModule(corpus, BYTE, seq_len=32, batch_size=4, cache_dir=str(tmp_path))
    firsts = []
    for seed in (1, 1, 2):
        L.seed_everything(seed, verbose=False)
        firsts.append(next(iter(module.train_dataloader()))["input_ids"])
    assert torch.equal(firsts[0], firsts[1]) and not torch.equal(firsts[0], firsts[2])


def test_datamodule_validation_names_keys(small_stdlib: Path, tmp_path: Path) -> None:
    corpus = PyStdlibCorpus(root=str(small_stdlib), val_fraction=0.2)
    with pytest.raises(ValueError, match="data.seq_len=0"):
        PretrainDataModule(corpus, BYTE, seq_len=0)
    with pytest.raises(ValueError, match="data.batch_size=-1"):
        PretrainDataModule(corpus, BYTE, batch_size=-1)
    with pytest.raises(TypeError, match="data.corpus"):
        PretrainDataModule("stdlib", BYTE)  # type: ignore[arg-type]
    huge = PretrainDataModule(corpus, BYTE, seq_len=100_000, batch_size=64, cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"train split has \d+ rows.*lower data.seq_len or data.batch_size"):
        huge.setup("fit")


def test_sft_datamodule_with_jsonl_source(tmp_path: Path) -> None:
    path = tmp_path / "sft.jsonl"
    records = [{"prompt": f"Q{i}: ", "response": "A" * (i % 7)} for i in range(200)]
    records.append({"prompt": "long ", "response": "z" * 100})
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    source = JsonlSFTSource(str(path))
    module = SFTDataModule(source, BYTE, seq_len=24, batch_size=4, val_fraction=0.1, test_fraction=0.1)
    module.setup("fit")
    batch = next(iter(module.train_dataloader()))
    assert batch["input_ids"].shape == batch["prompt_mask"].shape == (4, 24)
    assert batch["input_ids"].dtype == torch.long and batch["prompt_mask"].dtype == torch.bool
    assert (batch["input_ids"][:, 0] == BYTE.bos_id).all()
    sizes = {split: module.num_sequences(split) for split in ("train", "val", "test")}
    assert sum(sizes.values()) == 200 and sum(module.num_dropped.values()) == 1
    assert 0 < sizes["val"] < 40
    train_prompts = {ex.prompt for ex in split_examples(source, "train", 0.1, 0.1)}
    assert train_prompts.isdisjoint(ex.prompt for ex in split_examples(source, "val", 0.1, 0.1))

    too_short = SFTDataModule(source, BYTE, seq_len=4, batch_size=4)
    with pytest.raises(ValueError, match=r"train split has 0 rows.*\d+ examples were dropped.*data.truncate"):
        too_short.setup("fit")


def test_sft_datamodule_with_stdlib_functions(small_stdlib: Path, tmp_path: Path) -> None:
    corpus = PyStdlibCorpus(root=str(small_stdlib), val_fraction=0.2, test_fraction=0.2)
    source = StdlibFunctionSFTSource(corpus, cache_dir=str(tmp_path))
    module = SFTDataModule(source, BYTE, seq_len=512, batch_size=4, truncate=True)
    module.setup("fit")
    batch = next(iter(module.val_dataloader()))
    prompt = BYTE.decode(batch["input_ids"][0][batch["prompt_mask"][0]])
    assert prompt.lstrip().startswith(("def ", "async def "))
    assert module.num_val_sequences > 0
