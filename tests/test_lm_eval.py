"""The lm-eval adapter behaves as lm-eval's own HF model and LLaDA's published evaluation.

Most tests build a tiny random model in-process (a consolidated checkpoint folder with its run
config), so they are fast; their expectations are computed here from the network directly, not
through the adapter. The two end-to-end tests (a trained run, and a 2-process torchrun) are slow.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

lm_eval = pytest.importorskip("lm_eval", reason="the eval extra (lm-eval) is not installed")

from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from lm_eval.api.instance import Instance  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import lit_illada  # noqa: E402
from lit_illada.config.paths import CONF_DIR  # noqa: E402
from lit_illada.core.model import ModelConfig, Transformer  # noqa: E402
from lit_illada.evaluation.export import export_mc_nextline  # noqa: E402
from lit_illada.evaluation.lm_eval_adapter import LitIlladaLM  # noqa: E402 - registers the lit_illada model

ROOT = Path(__file__).resolve().parent.parent
LETTERS = range(ord("a"), ord("z") + 1)
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


# ------------------------------------------------------------------------------ tiny models


def bpe_tokenizer(folder: Path, chat_template: str | None = None) -> Path:
    """A byte-level BPE tokenizer where " world" is one token (so the split of "hello world" matters)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["[UNK]", "<|endoftext|>", "[MASK]"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(["hello world, hello there\n"] * 20, trainer)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    if chat_template is not None:
        (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": chat_template}))
    return folder


def tiny_checkpoint(folder: Path, *overrides: str, max_seq_len: int = 64, letters_only: bool = False) -> Path:
    """A random 1-layer model saved as a consolidated folder with its (resolved) run config.

    ``letters_only``: the LM head predicts only a-z (every other row is zero, so its logit is 0
    while some letter's is positive), so greedy answers are plain text that encodes back to the
    same byte tokens.
    """
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(overrides))
    tokenizer = instantiate(cfg.tokenizer)
    config = ModelConfig(
        vocab_size=tokenizer.vocab_size,
        n_layers=1,
        d_model=32,
        n_heads=2,
        ffn_hidden=64,
        max_seq_len=max_seq_len,
        tie_embeddings=False,
    )
    torch.manual_seed(0)
    net = Transformer(config)
    if letters_only:
        with torch.no_grad():
            keep = torch.zeros(config.vocab_size, dtype=torch.bool)
            keep[list(LETTERS)] = True
            net.lm_head.weight[~keep] = 0
            net.lm_head.weight[keep] *= 20  # confident predictions: no near-ties between letters
    folder.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config.to_dict()))
    (folder / "run_config.json").write_text(json.dumps(OmegaConf.to_container(cfg, resolve=True)))
    return folder


@pytest.fixture(scope="module")
def diffusion_ckpt(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "diffusion", letters_only=True)


@pytest.fixture(scope="module")
def ar_ckpt(tmp_path_factory):
    return tiny_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "ar", "objective=autoregressive", letters_only=True
    )


def requests(kind: str, *args) -> list[Instance]:
    return [Instance(request_type=kind, doc={}, arguments=a, idx=i) for i, a in enumerate(args)]


def byte_ids(text: str) -> list[int]:
    return list(text.encode())


def causal_log_prob(net, context: list[int], continuation: list[int]) -> float:
    """log p(continuation | context) of a left-to-right model, from one forward."""
    ids = torch.tensor([context + continuation])
    with torch.no_grad():
        log_probs = net(ids, causal=True)[0, :-1].double().log_softmax(-1)
    targets = ids[0, 1:]
    picked = log_probs.gather(1, targets[:, None])[:, 0]
    return float(picked[len(context) - 1 :].sum())


def masked_greedy(net, context: list[int], length: int, mask_id: int) -> list[int]:
    """LLaDA's greedy decode: reveal the most confident masked position's argmax, one per step."""
    x = torch.tensor([context + [mask_id] * length])
    with torch.no_grad():
        for _ in range(length):
            probs = net(x)[0].softmax(-1)
            confidence, token = probs.max(-1)
            confidence[x[0] != mask_id] = -1
            position = int(confidence.argmax())
            x[0, position] = token[position]
    return x[0, len(context) :].tolist()


def left_to_right_greedy(net, context: list[int], length: int) -> list[int]:
    ids = list(context)
    with torch.no_grad():
        for _ in range(length):
            ids.append(int(net(torch.tensor([ids]), causal=True)[0, -1].argmax()))
    return ids[len(context) :]


# --------------------------------------------------------------------------- loglikelihood


def test_loglikelihood_encodes_context_and_continuation_as_template_lm(tmp_path):
    tokenizer_dir = bpe_tokenizer(tmp_path / "tok")
    ckpt = tiny_checkpoint(
        tmp_path / "ar", "objective=autoregressive", "tokenizer=hf", f"tokenizer.path={tokenizer_dir}"
    )
    loaded = lit_illada.load(ckpt)
    encode = loaded.tokenizer.encode
    # lm-eval: the context's trailing space moves to the continuation; "hello world" is encoded
    # once and split at the length of "hello". Encoding the halves apart gives other tokens.
    context, whole = encode("hello"), encode("hello world")
    continuation = whole[len(context) :]
    assert (context, continuation) != (encode("hello "), encode("world"))

    lm = LitIlladaLM(ckpt=str(ckpt), device="cpu")
    [(score, _)] = lm.loglikelihood(requests("loglikelihood", ("hello ", "world")))
    assert score == pytest.approx(causal_log_prob(loaded.net, context, continuation), abs=1e-4)


@pytest.mark.parametrize("kind", ["diffusion", "autoregressive"])
def test_is_greedy_is_whether_greedy_decoding_reproduces_the_continuation(kind, diffusion_ckpt, ar_ckpt):
    ckpt = diffusion_ckpt if kind == "diffusion" else ar_ckpt
    loaded = lit_illada.load(ckpt)
    context = byte_ids("the cat")
    if kind == "diffusion":
        answer = masked_greedy(loaded.net, context, 4, loaded.mask_id)
    else:
        answer = left_to_right_greedy(loaded.net, context, 4)
    text = bytes(answer).decode()
    assert text.isalpha() and text.islower()
    other = text[:-1] + ("a" if text[-1] != "a" else "b")  # the same but the last letter

    lm = LitIlladaLM(ckpt=str(ckpt), device="cpu", **({"scoring.mc_num": 4} if kind == "diffusion" else {}))
    results = lm.loglikelihood(requests("loglikelihood", ("the cat", text), ("the cat", other)))
    assert [is_greedy for _, is_greedy in results] == [True, False]

    unchecked = LitIlladaLM(ckpt=str(ckpt), device="cpu", check_greedy="false")
    assert [g for _, g in unchecked.loglikelihood(requests("loglikelihood", ("the cat", text)))] == [False]


def test_likelihood_scores_do_not_depend_on_the_other_requests(diffusion_ckpt):
    """Monte Carlo masks come from each request itself: a data-parallel shard, a different order
    or a cache hit gives a request the same score."""
    lm = LitIlladaLM(ckpt=str(diffusion_ckpt), device="cpu", **{"scoring.mc_num": 4})
    pairs = [("def f", "(x)"), ("import", " os"), ("class", " A:")]
    alone = [lm.loglikelihood(requests("loglikelihood", pair))[0][0] for pair in pairs]
    together = [score for score, _ in lm.loglikelihood(requests("loglikelihood", *reversed(pairs)))]
    assert together[::-1] == pytest.approx(alone, abs=1e-5)


# ---------------------------------------------------------------------------- rolling


def test_rolling_loglikelihood_of_an_ar_model_conditions_on_eos(ar_ckpt):
    loaded = lit_illada.load(ar_ckpt)
    tokenizer = loaded.tokenizer
    assert tokenizer.bos_id != tokenizer.eos_id
    lm = LitIlladaLM(ckpt=str(ar_ckpt), device="cpu")
    [score] = lm.loglikelihood_rolling(requests("loglikelihood_rolling", ("x = 1\n",)))
    ids = byte_ids("x = 1\n")
    assert score == pytest.approx(causal_log_prob(loaded.net, [tokenizer.eos_id], ids), abs=1e-4)
    assert score != pytest.approx(causal_log_prob(loaded.net, [tokenizer.bos_id], ids), abs=1e-4)


def test_rolling_loglikelihood_covers_documents_longer_than_the_context(tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "ar", "objective=autoregressive", max_seq_len=16)
    loaded = lit_illada.load(ckpt)
    text = "def add(a, b):\n    return a + b\n"  # 33 bytes over a 16-token context
    [score] = LitIlladaLM(ckpt=str(ckpt), device="cpu").loglikelihood_rolling(
        requests("loglikelihood_rolling", (text,))
    )
    # lm-eval's rolling windows (HFLM's, context_len=1), the first after EOS: every token predicted once,
    # the last window with as much context as fits.
    from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

    windows = [
        make_disjoint_window(w)
        for w in get_rolling_token_windows(byte_ids(text), loaded.tokenizer.eos_id, 15, 1)
    ]
    assert len(windows) == 3 and windows[0][0] == [loaded.tokenizer.eos_id]
    expected = sum(causal_log_prob(loaded.net, context, continuation) for context, continuation in windows)
    assert score == pytest.approx(expected, abs=1e-4)


# ------------------------------------------------------------------------- generation


def test_generate_until_follows_the_request(diffusion_ckpt, caplog):
    loaded = lit_illada.load(diffusion_ckpt)
    greedy = bytes(masked_greedy(loaded.net, byte_ids("def "), 5, loaded.mask_id)).decode()
    lm = LitIlladaLM(ckpt=str(diffusion_ckpt), device="cpu")
    stop = greedy[2]
    with caplog.at_level(logging.WARNING):
        full, cut = lm.generate_until(
            requests(
                "generate_until",
                ("def ", {"until": [], "max_gen_toks": 5, "do_sample": False}),
                ("def ", {"until": [stop], "max_gen_toks": 5, "do_sample": False}),
            )
        )
    assert full == greedy  # max_gen_toks=5 is the generation length, decoded greedily
    assert cut == greedy.split(stop)[0]
    assert "1 of 2 answers were cut off" in caplog.text  # the first filled all 5 tokens

    sampled = lm.generate_until(
        requests(
            "generate_until",
            *[("def ", {"until": [], "max_gen_toks": 5, "do_sample": True, "temperature": 50.0})] * 3,
        )
    )
    assert any(answer != greedy for answer in sampled)


def test_sampler_settings_in_model_args_override_the_request(diffusion_ckpt):
    loaded = lit_illada.load(diffusion_ckpt)
    lm = LitIlladaLM(
        ckpt=str(diffusion_ckpt),
        device="cpu",
        **{"sampler.gen_length": 8, "sampler.block_length": 8, "sampler.steps": 8, "sampler.temperature": 0},
    )
    [answer] = lm.generate_until(
        requests(
            "generate_until",
            ("def ", {"until": [], "max_gen_toks": 5, "do_sample": True, "temperature": 50.0}),
        )
    )
    assert answer == bytes(masked_greedy(loaded.net, byte_ids("def "), 8, loaded.mask_id)).decode()


def test_batch_size_auto_halves_on_out_of_memory(diffusion_ckpt, monkeypatch):
    prompts = [(f"def {c}", {"until": [], "max_gen_toks": 3, "do_sample": False}) for c in "abcde"]
    three = {"sampler.gen_length": 3, "sampler.block_length": 3, "sampler.steps": 3}
    one_by_one = LitIlladaLM(ckpt=str(diffusion_ckpt), device="cpu", **three).generate_until(
        requests("generate_until", *prompts)
    )

    rows_per_forward = []
    forward = Transformer.forward

    def small_device(self, ids, *args, **kwargs):
        # A mock: a CUDA out-of-memory error cannot happen on this CPU; batches over 2 rows raise it.
        rows_per_forward.append(ids.shape[0])
        if ids.shape[0] > 2:
            raise torch.cuda.OutOfMemoryError("mock: more than 2 rows")
        return forward(self, ids, *args, **kwargs)

    monkeypatch.setattr(Transformer, "forward", small_device)
    lm = LitIlladaLM(ckpt=str(diffusion_ckpt), device="cpu", batch_size="auto", max_batch_size=8, **three)
    assert lm.generate_until(requests("generate_until", *prompts)) == one_by_one
    # 5 prompts, max_batch_size 8: all 5 ran out of memory, then 4; 2 fit (2 + 2 + 1).
    assert rows_per_forward[:2] == [5, 4] and set(rows_per_forward[2:]) == {2, 1}

    with pytest.raises(ValueError, match="batch_size='big'"):
        LitIlladaLM(ckpt=str(diffusion_ckpt), device="cpu", batch_size="big")


# ------------------------------------------------------------------------ chat templates


def local_task(folder: Path, name: str, rows: list[dict], spec: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / f"{name}.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    header = f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\n"
    header += "test_split: test\n"
    (folder / f"{name}.yaml").write_text(header + spec)


GENERATION_TASK = """output_type: generate_until
doc_to_text: "{{question}}"
doc_to_target: "{{answer}}"
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 4
  do_sample: false
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""


def test_apply_chat_template_uses_the_tokenizers_template(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    from lm_eval.tasks import TaskManager

    tokenizer_dir = bpe_tokenizer(tmp_path / "tok", chat_template=CHAT_TEMPLATE)
    ckpt = tiny_checkpoint(tmp_path / "chat", "tokenizer=hf", f"tokenizer.path={tokenizer_dir}")
    local_task(
        tmp_path / "tasks", "lit_chat", [{"question": "hello", "answer": "world"}] * 2, GENERATION_TASK
    )
    results = lm_eval.simple_evaluate(
        model="lit_illada",
        model_args=f"ckpt={ckpt},device=cpu",
        tasks=["lit_chat"],
        task_manager=TaskManager(include_path=str(tmp_path / "tasks")),
        apply_chat_template=True,
        log_samples=True,
    )
    prompt = results["samples"]["lit_chat"][0]["arguments"][0][0]
    assert prompt == "<|user|>hello\n<|assistant|>"

    lm = LitIlladaLM(ckpt=str(ckpt), device="cpu")
    assert lm.tokenizer_name == lit_illada.load(ckpt).tokenizer.name
    assert lm.chat_template(True) == CHAT_TEMPLATE


def test_apply_chat_template_without_a_template_is_refused(diffusion_ckpt):
    lm = LitIlladaLM(ckpt=str(diffusion_ckpt), device="cpu")
    with pytest.raises(ValueError, match="has no chat template"):
        lm.apply_chat_template([{"role": "user", "content": "hi"}])


def test_device_in_model_args_wins_over_lm_evals_default(diffusion_ckpt):
    # lm-eval's CLI always adds device (cuda:0 by default) to the model_args.
    lm = LitIlladaLM.create_from_arg_string(
        f"ckpt={diffusion_ckpt},device=cpu", {"device": "cuda:0", "batch_size": 2}
    )
    assert lm.device == torch.device("cpu") and lm.batch.size == 2


# --------------------------------------------------------------------------- data parallel

MC_TASK = """output_type: multiple_choice
doc_to_text: "{{context}}"
doc_to_choice: choices
doc_to_target: answer
target_delimiter: ""
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""
LAMBADA_LIKE_TASK = """output_type: loglikelihood
doc_to_text: "{{context}}"
doc_to_target: "{{target}}"
target_delimiter: ""
metric_list:
  - metric: perplexity
    aggregation: perplexity
    higher_is_better: false
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""


def parallel_tasks(folder: Path, net, mask_id: int) -> list[str]:
    contexts = ["def f", "x =", "import", "class A", "return", "for i in"]
    local_task(
        folder,
        "lit_dp_mc",
        [{"context": c, "choices": ["(x)", " y", "z:"], "answer": i % 3} for i, c in enumerate(contexts)],
        MC_TASK,
    )
    greedy = [bytes(masked_greedy(net, byte_ids(c), 3, mask_id)).decode() for c in contexts]
    local_task(
        folder,
        "lit_dp_last",
        [
            {"context": c, "target": g if i % 2 else "abc"}
            for i, (c, g) in enumerate(zip(contexts, greedy, strict=True))
        ],
        LAMBADA_LIKE_TASK,
    )
    local_task(folder, "lit_dp_gen", [{"question": c, "answer": "x"} for c in contexts], GENERATION_TASK)
    return ["lit_dp_mc", "lit_dp_last", "lit_dp_gen"]


def by_document(samples: dict) -> dict:
    """``(task, doc_id)`` -> its responses: texts, or (log-likelihood, is_greedy) pairs flattened."""
    out = {}
    for task, rows in samples.items():
        for row in rows:
            responses = [r[0] for r in row["resps"]]
            out[(task, row["doc_id"])] = [
                x for r in responses for x in ([r] if isinstance(r, str) else map(_number, r))
            ]
    return out


def _number(value) -> float:
    """A logged number: lm-eval's sample files write (log-likelihood, is_greedy) as strings."""
    return float(value == "True") if value in ("True", "False") else float(value)


@pytest.mark.slow
def test_torchrun_data_parallel_equals_one_process(diffusion_ckpt, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    from lm_eval.tasks import TaskManager

    loaded = lit_illada.load(diffusion_ckpt)
    tasks = parallel_tasks(tmp_path / "tasks", loaded.net, loaded.mask_id)
    model_args = f"ckpt={diffusion_ckpt},scoring.mc_num=4"
    single = lm_eval.simple_evaluate(
        model="lit_illada",
        model_args=model_args,
        tasks=tasks,
        log_samples=True,
        device="cpu",
        task_manager=TaskManager(include_path=str(tmp_path / "tasks")),
    )
    assert (
        single["results"]["lit_dp_last"]["acc,none"] == 0.5
    )  # is_greedy: the odd rows are the greedy answers

    out = tmp_path / "out"
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            str(_free_port()),
            "-m",
            "lit_illada.lm_eval",
            "run",
            "--model",
            "lit_illada",
            "--model_args",
            model_args,
            "--tasks",
            ",".join(tasks),
            "--include_path",
            str(tmp_path / "tasks"),
            "--device",
            "cpu",
            "--output_path",
            str(out),
            "--log_samples",
            "--use_cache",
            str(tmp_path / "cache"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # lm-eval's per-rank request caches: each rank ran its own half of the 30 requests
    # (6 questions x 3 choices, 6 continuations, 6 generations).
    ran = [cached_requests(tmp_path / f"cache_rank{rank}.db") for rank in (0, 1)]
    assert len(ran[0]) == len(ran[1]) == 15 and not ran[0] & ran[1]
    gathered = {
        task: [
            json.loads(line)
            for path in out.rglob(f"samples_{task}_*.jsonl")
            for line in path.read_text().splitlines()
        ]
        for task in tasks
    }
    assert sorted(row["doc_id"] for row in gathered["lit_dp_mc"]) == list(range(6))  # both shards, gathered
    expected, got = by_document(single["samples"]), by_document(gathered)
    assert got.keys() == expected.keys()
    for key, responses in expected.items():
        texts = [r for r in responses if isinstance(r, str)]
        assert [r for r in got[key] if isinstance(r, str)] == texts, key
        numbers = [r for r in responses if not isinstance(r, str)]
        assert [r for r in got[key] if not isinstance(r, str)] == pytest.approx(numbers, abs=1e-5), key
    results = json.loads(next(out.rglob("results_*.json")).read_text())["results"]
    for task in tasks:
        for metric, value in single["results"][task].items():
            if isinstance(value, float) and "stderr" not in metric:
                # relative: a perplexity of ~1e6 (exp of a mean log-likelihood) moves by 0.2 when
                # the ranks' log-likelihoods differ by 2e-7 relative (seen with torch 2.14)
                assert results[task][metric] == pytest.approx(value, rel=1e-5, abs=1e-6), (task, metric)


def cached_requests(path: Path) -> set[str]:
    import sqlite3

    with sqlite3.connect(path) as db:  # lm-eval's CachingLM: a sqlitedict keyed by request hash
        return {key for (key,) in db.execute("SELECT key FROM unnamed")}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -------------------------------------------------------------------- a trained checkpoint


@pytest.mark.slow
@pytest.mark.parametrize("scoring", ["likelihood", "confidence"])
def test_lm_eval_runs_the_local_nextline_task(trained_run, tmp_path, monkeypatch, scoring):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")  # the task's data is a local JSONL file
    export_mc_nextline(tmp_path, limit=6)
    from lm_eval.tasks import TaskManager

    extra = ",scoring.mc_num=4,scoring.batch_size=4" if scoring == "likelihood" else ""
    results = lm_eval.simple_evaluate(
        model="lit_illada",
        model_args=f"ckpt={trained_run},scoring={scoring}{extra}",
        tasks=["lit_mc_nextline"],
        task_manager=TaskManager(include_path=str(tmp_path)),
        limit=6,
    )
    accuracy = results["results"]["lit_mc_nextline"]["acc,none"]
    assert 0.0 <= accuracy <= 1.0
    assert results["n-samples"]["lit_mc_nextline"]["effective"] == 6


def test_a_bad_model_arg_is_one_line_and_exit_2(diffusion_ckpt, tmp_path):
    local_task(tmp_path, "lit_cli", [{"question": "x", "answer": "y"}], GENERATION_TASK)
    proc = subprocess.run(
        [sys.executable, "-m", "lit_illada.lm_eval", "run", "--model", "lit_illada",
         "--model_args", f"ckpt={diffusion_ckpt},temprature=0.5", "--tasks", "lit_cli",
         "--include_path", str(tmp_path), "--device", "cpu"],
        cwd=ROOT, env={**os.environ, "HF_DATASETS_OFFLINE": "1"}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert "error: lit_illada model_args: unknown key 'temprature'" in proc.stderr
