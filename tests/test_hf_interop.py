"""HF LLaDA checkpoints in and out (lit_illada.checkpoints.hf) and the one-call loader (lit_illada.load).

The HF side of every test is written here, by hand, from REFERENCE.md ("HF checkpoint
layout"): tensor names come from an explicit per-layer listing below, not from hf_interop's
key map, so a wrong map fails the logits comparison instead of agreeing with itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import lit_illada
from lit_illada.checkpoints.hf import config_from_hf, config_to_hf, export_hf, hf_key_map, import_hf
from lit_illada.core.model import ModelConfig, Transformer
from lit_illada.planning.memory import count_params

P = "model.transformer."

# Two tiny shapes: iLLaDA-like (GQA, tied head, fp32 on disk) and LLaDA-like (MHA, untied
# head, bf16 on disk, vocabulary padded from 100 to 112 embedding rows).
GQA_TIED = {
    "d_model": 32, "n_heads": 4, "n_kv_heads": 2, "n_layers": 2, "mlp_hidden_size": 48,
    "vocab_size": 96, "embedding_size": 96, "max_sequence_length": 64, "rope_theta": 500000.0,
    "rms_norm_eps": 1e-5, "weight_tying": True, "mask_token_id": 5,
}  # fmt: skip
MHA_UNTIED = {
    "d_model": 32, "n_heads": 4, "n_kv_heads": 4, "n_layers": 2, "mlp_hidden_size": 40,
    "vocab_size": 100, "embedding_size": 112, "max_sequence_length": 64, "rope_theta": 10000.0,
    "rms_norm_eps": 1e-6, "weight_tying": False, "mask_token_id": 90,
}  # fmt: skip
CASES = {"gqa_tied_fp32": (GQA_TIED, torch.float32), "mha_untied_bf16": (MHA_UNTIED, torch.bfloat16)}


def reference_model(hf: dict, dtype: torch.dtype) -> Transformer:
    """A random lit_illada model of the shape ``hf`` describes, built without hf_interop."""
    torch.manual_seed(0)
    cfg = ModelConfig(
        vocab_size=hf["embedding_size"], n_layers=hf["n_layers"], d_model=hf["d_model"],
        n_heads=hf["n_heads"], n_kv_heads=hf["n_kv_heads"], ffn_hidden=hf["mlp_hidden_size"],
        max_seq_len=hf["max_sequence_length"], rope_theta=hf["rope_theta"], norm_eps=hf["rms_norm_eps"],
        tie_embeddings=hf["weight_tying"],
    )  # fmt: skip
    model = Transformer(cfg)
    with torch.no_grad():  # norms are ones after init: make them count
        for name, p in model.named_parameters():
            if "norm" in name or name == "ln_f.weight":
                p.add_(0.1 * torch.randn_like(p))
    return model.to(dtype).eval()


def hf_tensors(model: Transformer) -> dict[str, torch.Tensor]:
    """The model's weights under LLaDA's names, listed out from REFERENCE.md."""
    out = {P + "wte.weight": model.wte.weight}
    for i, block in enumerate(model.blocks):
        b = f"{P}blocks.{i}."
        out[b + "attn_norm.weight"] = block.attn_norm.weight
        out[b + "q_proj.weight"] = block.attn.q_proj.weight
        out[b + "k_proj.weight"] = block.attn.k_proj.weight
        out[b + "v_proj.weight"] = block.attn.v_proj.weight
        out[b + "attn_out.weight"] = block.attn.attn_out.weight
        out[b + "ff_norm.weight"] = block.ff_norm.weight
        out[b + "ff_proj.weight"] = block.mlp.ff_proj.weight
        out[b + "up_proj.weight"] = block.mlp.up_proj.weight
        out[b + "ff_out.weight"] = block.mlp.ff_out.weight
    out[P + "ln_f.weight"] = model.ln_f.weight
    if not model.config.tie_embeddings:
        out[P + "ff_out.weight"] = model.lm_head.weight
    return {key: value.detach().clone() for key, value in out.items()}


def write_hf_dir(folder: Path, tensors: dict[str, torch.Tensor], config: dict) -> Path:
    """LLaDA's layout: two safetensors shards, the index JSON, config.json and a tokenizer."""
    folder.mkdir(parents=True)
    keys = list(tensors)
    halves = {"model-00001-of-00002.safetensors": keys[: len(keys) // 2],
              "model-00002-of-00002.safetensors": keys[len(keys) // 2 :]}  # fmt: skip
    for name, part in halves.items():
        save_file({key: tensors[key] for key in part}, str(folder / name), metadata={"format": "pt"})
    index = {
        "metadata": {"total_size": sum(t.numel() * t.element_size() for t in tensors.values())},
        "weight_map": {key: name for name, part in halves.items() for key in part},
    }
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    (folder / "config.json").write_text(json.dumps(config))
    write_tokenizer(folder)
    return folder


def write_tokenizer(folder: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[UNK]": 0, "<|endoftext|>": 1, **{f"w{i}": i for i in range(2, 96)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "special_tokens_map.json").write_text(json.dumps({"eos_token": "<|endoftext|>"}))


def read_hf_tensors(folder: Path) -> dict[str, torch.Tensor]:
    tensors = {}
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as handle:
            tensors.update({key: handle.get_tensor(key) for key in handle.keys()})
    return tensors


def ids_for(model: Transformer) -> torch.Tensor:
    return torch.randint(0, model.config.vocab_size, (2, 24), generator=torch.Generator().manual_seed(1))


def assert_same_tensors(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert list(sorted(got)) == list(sorted(expected))
    for key, tensor in expected.items():
        assert got[key].dtype == tensor.dtype and got[key].shape == tensor.shape, key
        assert torch.equal(got[key], tensor), key


@pytest.fixture(params=list(CASES))
def case(request, tmp_path):
    config, dtype = CASES[request.param]
    model = reference_model(config, dtype)
    hf_dir = write_hf_dir(tmp_path / "hf", hf_tensors(model), config)
    return hf_dir, model, config


# --- import, load, export ---------------------------------------------------------------------


def test_imported_model_gives_identical_logits(case, tmp_path):
    hf_dir, reference, config = case
    lit_dir = import_hf(hf_dir, tmp_path / "lit")
    written = json.loads((lit_dir / "config.json").read_text())
    assert written["mask_id"] == config["mask_token_id"] and written["source"]["hf_config"] == config
    assert (lit_dir / "tokenizer.json").is_file()

    loaded = lit_illada.load(lit_dir)
    model = loaded.net
    assert not model.training and loaded.mask_id == config["mask_token_id"] and loaded.kind == "diffusion"
    assert (
        model.config.vocab_size == config["embedding_size"] and model.num_params() == reference.num_params()
    )
    ids = ids_for(reference)
    with torch.no_grad():
        assert torch.equal(model(ids), reference(ids))
    assert loaded.tokenizer.eos_id == 1 and loaded.tokenizer.mask_id == config["mask_token_id"]
    if config["weight_tying"]:
        assert model.lm_head.weight is model.wte.weight


def test_hf_directory_loads_directly_with_identical_logits(case):
    hf_dir, reference, config = case
    loaded = lit_illada.load(hf_dir)
    ids = ids_for(reference)
    with torch.no_grad():
        assert torch.equal(loaded.net(ids), reference(ids))
    assert loaded.mask_id == config["mask_token_id"] and loaded.tokenizer is not None


def test_export_gives_back_the_original_tensors_and_config(case, tmp_path):
    hf_dir, _, config = case
    lit_dir = import_hf(hf_dir, tmp_path / "lit")
    out = export_hf(lit_dir, tmp_path / "hf_again", shard_size_bytes=4096)

    assert_same_tensors(read_hf_tensors(out), read_hf_tensors(hf_dir))
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == {file.name for file in out.glob("model-*.safetensors")}
    assert len(set(index["weight_map"].values())) > 2
    exported = json.loads((out / "config.json").read_text())
    assert {key: exported[key] for key in config} == config
    assert (out / "tokenizer.json").read_bytes() == (hf_dir / "tokenizer.json").read_bytes()

    again = import_hf(out, tmp_path / "lit_again")  # and back: identical lit_illada tensors
    assert_same_tensors(
        load_file(str(again / "model.safetensors")), load_file(str(lit_dir / "model.safetensors"))
    )


def test_export_from_a_model_or_a_state_dict(case, tmp_path):
    hf_dir, reference, config = case
    original = read_hf_tensors(hf_dir)
    export_hf(reference, tmp_path / "from_model", mask_id=config["mask_token_id"])
    assert_same_tensors(read_hf_tensors(tmp_path / "from_model"), original)
    # A full state_dict() lists a tied head twice; export keeps it once, as wte.
    export_hf(
        reference.state_dict(),
        tmp_path / "from_state",
        config=reference.config,
        mask_id=config["mask_token_id"],
    )
    assert_same_tensors(read_hf_tensors(tmp_path / "from_state"), original)
    assert (
        tmp_path / "from_state" / "model.safetensors"
    ).is_file()  # one shard: no index, as transformers does


def test_import_casts_to_the_requested_dtype(tmp_path):
    reference = reference_model(GQA_TIED, torch.float32)
    hf_dir = write_hf_dir(tmp_path / "hf", hf_tensors(reference), GQA_TIED)
    lit_dir = import_hf(hf_dir, tmp_path / "lit", dtype="bf16")
    assert {t.dtype for t in load_file(str(lit_dir / "model.safetensors")).values()} == {torch.bfloat16}
    model = lit_illada.load(hf_dir, dtype=torch.bfloat16).net
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


TINY_RUN = ["model.n_layers=2", "model.d_model=32", "model.n_heads=4", "model.n_kv_heads=2",
            "model.ffn_hidden=48", "model.max_seq_len=64"]  # fmt: skip


def training_run(folder: Path, *overrides: str) -> tuple[Path, Transformer, dict]:
    """A run directory holding checkpoints/last.ckpt as Lightning + DiffusionLM.on_save_checkpoint
    write it, for the tiny GQA, tied-head model of TINY_RUN; returns (run dir, model, run config)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    import lit_illada.config.resolvers  # noqa: F401 - the resolvers the train config uses
    from lit_illada.config.paths import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        run_config = OmegaConf.to_container(
            compose(config_name="train", overrides=["logger=csv", *TINY_RUN, *overrides]), resolve=True
        )
    run_only = ("_target_", "compile")  # the yaml's target, and model.compile (not architecture)
    cfg = ModelConfig(**{key: value for key, value in run_config["model"].items() if key not in run_only})
    torch.manual_seed(0)
    reference = Transformer(cfg).eval()
    checkpoint = {
        "state_dict": {f"net.{key}": value for key, value in reference.state_dict().items()},
        "lit_illada": {"model_config": cfg.to_dict(), "run_config": run_config},
    }
    (folder / "checkpoints").mkdir(parents=True)
    torch.save(checkpoint, folder / "checkpoints" / "last.ckpt")
    return folder, reference, run_config


def test_training_checkpoint_loads_and_exports(tmp_path):
    run_dir, reference, _ = training_run(tmp_path / "run")
    ids = ids_for(reference)
    for path in (run_dir, run_dir / "checkpoints" / "last.ckpt"):
        loaded = lit_illada.load(path)
        model = loaded.net
        assert loaded.mask_id == 259 and loaded.tokenizer.mask_id == 259  # the byte tokenizer's mask
        with torch.no_grad():
            assert torch.equal(model(ids), reference(ids))

    hf_dir = export_hf(model, tmp_path / "hf")
    with torch.no_grad():
        assert torch.equal(lit_illada.load(hf_dir).net(ids), reference(ids))


# --- errors ------------------------------------------------------------------------------------


def test_missing_tensor_is_named_and_nothing_is_written(tmp_path):
    tensors = hf_tensors(reference_model(GQA_TIED, torch.float32))
    del tensors[P + "blocks.1.up_proj.weight"]
    hf_dir = write_hf_dir(tmp_path / "hf", tensors, GQA_TIED)
    with pytest.raises(ValueError, match=r"missing \(1\): model\.transformer\.blocks\.1\.up_proj\.weight"):
        import_hf(hf_dir, tmp_path / "lit")
    assert not (tmp_path / "lit").exists()


def test_wrong_shape_names_the_tensor_and_the_config_fields(tmp_path):
    hf_dir = write_hf_dir(tmp_path / "hf", hf_tensors(reference_model(GQA_TIED, torch.float32)), GQA_TIED)
    (hf_dir / "config.json").write_text(json.dumps({**GQA_TIED, "n_kv_heads": 4}))  # the tensors are GQA 4/2
    with pytest.raises(
        ValueError,
        match=r"(?s)wrong shape \(4\): model\.transformer\.blocks\.0\.k_proj\.weight: "
        r"\[16, 32\], the config gives \[32, 32\].*hint: shapes follow from d_model",
    ):
        import_hf(hf_dir, tmp_path / "lit")


def test_untied_head_under_a_tied_config_gets_a_hint(tmp_path):
    hf_dir = write_hf_dir(tmp_path / "hf", hf_tensors(reference_model(MHA_UNTIED, torch.float32)), MHA_UNTIED)
    (hf_dir / "config.json").write_text(json.dumps({**MHA_UNTIED, "weight_tying": True}))
    with pytest.raises(
        ValueError, match=r"(?s)unexpected \(1\): model\.transformer\.ff_out\.weight.*weight_tying=true"
    ):
        lit_illada.load(hf_dir)


def test_mask_id_comes_from_the_config_or_the_option_else_an_error(tmp_path):
    config = {key: value for key, value in MHA_UNTIED.items() if key != "mask_token_id"}
    hf_dir = write_hf_dir(tmp_path / "hf", hf_tensors(reference_model(MHA_UNTIED, torch.float32)), config)
    with pytest.raises(ValueError, match=r"no mask id: .*pass mask_id \(126336 for LLaDA, 5 for iLLaDA\)"):
        import_hf(hf_dir, tmp_path / "lit")
    assert (
        json.loads((import_hf(hf_dir, tmp_path / "lit", mask_id=7) / "config.json").read_text())["mask_id"]
        == 7
    )
    assert lit_illada.load(hf_dir, mask_id=7).mask_id == 7
    with pytest.raises(ValueError, match="mask_id applies to Hugging Face directories only"):
        lit_illada.load(tmp_path / "lit", mask_id=7)
    assert config_from_hf(MHA_UNTIED, mask_id=5)[1] == 5  # the option wins over mask_token_id
    with pytest.raises(ValueError, match=r"mask_id=112 must be a token id in \[0, 112\)"):
        config_from_hf(MHA_UNTIED, mask_id=112)


def test_unsupported_architecture_switches_are_refused():
    with pytest.raises(
        ValueError, match=r"sets \{'include_bias': True\}, which the lit_illada Transformer does not"
    ):
        config_from_hf({**GQA_TIED, "include_bias": True})
    with pytest.raises(ValueError, match=r"lacks \['rope_theta'\]"):
        config_from_hf({key: value for key, value in GQA_TIED.items() if key != "rope_theta"})


def test_output_directory_holding_a_model_needs_overwrite(case, tmp_path):
    hf_dir, _, _ = case
    lit_dir = import_hf(hf_dir, tmp_path / "lit")
    with pytest.raises(FileExistsError, match="already holds a model .*overwrite=True"):
        import_hf(hf_dir, lit_dir)
    import_hf(hf_dir, lit_dir, overwrite=True)
    assert not list(lit_dir.glob("*.partial"))
    with pytest.raises(ValueError, match="is the directory being converted"):
        export_hf(lit_dir, lit_dir, overwrite=True)  # would delete the weights it reads
    assert (lit_dir / "model.safetensors").is_file()


def test_unrecognized_paths_say_what_was_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or run directory"):
        lit_illada.load(tmp_path / "absent")
    with pytest.raises(
        ValueError, match=r"not a model lit_illada can load\. Expected one of: .*checkpoint.*import_hf"
    ):
        lit_illada.load(tmp_path)


# --- configs and the key map ---------------------------------------------------------------------


def test_llada_8b_config_has_the_reference_parameter_count():
    llada_8b = {
        "d_model": 4096, "n_heads": 32, "n_kv_heads": 32, "n_layers": 32, "mlp_hidden_size": 12288,
        "vocab_size": 126464, "embedding_size": 126464, "max_sequence_length": 4096, "rope_theta": 500000.0,
        "rms_norm_eps": 1e-5, "weight_tying": False, "mask_token_id": 126336,
    }  # fmt: skip
    cfg, mask_id = config_from_hf(llada_8b)
    assert count_params(cfg) == 8_015_581_184 and mask_id == 126336
    assert len(hf_key_map(cfg)) == 291  # REFERENCE.md: LLaDA-8B has 291 tensors
    exported = config_to_hf(cfg, mask_id)
    assert {key: exported[key] for key in llada_8b} == llada_8b


def test_key_map_covers_every_parameter_exactly_once():
    for config, _ in CASES.values():
        model = reference_model(config, torch.float32)
        key_map = hf_key_map(model.config)
        assert set(key_map) == {name for name, _ in model.named_parameters()}
        assert set(key_map.values()) == set(hf_tensors(model))


# --- the convert CLI and the entry points on imported weights --------------------------------


def test_convert_cli_imports_and_exports_and_generate_runs_on_the_import(case, tmp_path):
    from lit_illada.checkpoints.loader import load
    from lit_illada.convert import main as convert

    hf_dir, reference, config = case
    convert(["from_hf", str(hf_dir), str(tmp_path / "lit")])
    convert(["to_hf", str(tmp_path / "lit"), str(tmp_path / "back")])
    assert_same_tensors(read_hf_tensors(tmp_path / "back"), read_hf_tensors(hf_dir))

    loaded = load(tmp_path / "lit")  # what generate / evaluate / lm_eval use
    ids = ids_for(reference)
    with torch.no_grad():
        assert torch.equal(loaded.net(ids), reference(ids))
    assert loaded.objective.mask_id == config["mask_token_id"] == loaded.tokenizer.mask_id


# --- transformers and the Hub ------------------------------------------------------------------

# What a transformers user runs on an exported folder, in a fresh process where lit_illada cannot
# be imported: the folder's own code must be enough. Prints facts as JSON, saves the logits.
TRANSFORMERS_SIDE = r"""
import json, sys
sys.modules["lit_illada"] = None  # importing lit_illada now fails: the folder must be self-contained
import torch
from safetensors.torch import save_file
from transformers import AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM

request = json.loads(sys.argv[1])
logits, facts = {}, {}
for name, folder in request["folders"].items():
    ids = torch.tensor(request["ids"][name])
    masked_lm = AutoModelForMaskedLM.from_pretrained(folder, trust_remote_code=True).eval()
    auto = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    with torch.no_grad():
        logits[name] = masked_lm(ids).logits.contiguous()
        logits[name + "/AutoModel"] = auto(ids).logits.contiguous()
    try:
        AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)
        facts[name] = {"causal_lm": "loaded"}
    except ValueError:
        facts[name] = {"causal_lm": "refused"}
    facts[name]["class"] = type(masked_lm).__name__
    facts[name]["dtype"] = str(masked_lm.dtype)
save_file(logits, request["logits"])
print(json.dumps(facts))
"""

SHIPPED_CODE = ("configuration_lit_illada.py", "modeling_lit_illada.py")

# A LLaDA config.json names LLaDA's own code, which an export does not ship.
LLADA_TRANSFORMERS_FIELDS = {
    "model_type": "llada",
    "architectures": ["LLaDAModelLM"],
    "auto_map": {
        "AutoConfig": "configuration_llada.LLaDAConfig",
        "AutoModel": "modeling_llada.LLaDAModelLM",
        "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM",
    },
}


def load_with_transformers(tmp_path: Path, folders: dict[str, Path], ids: dict[str, torch.Tensor]):
    """(logits by name, facts by name) from TRANSFORMERS_SIDE run on ``folders``."""
    request = {
        "folders": {name: str(folder) for name, folder in folders.items()},
        "ids": {name: tensor.tolist() for name, tensor in ids.items()},
        "logits": str(tmp_path / "transformers_logits.safetensors"),
    }
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", TRANSFORMERS_SIDE, json.dumps(request)],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return load_file(request["logits"]), json.loads(done.stdout.strip().splitlines()[-1])


def test_transformers_loads_the_export_with_lit_illada_logits(tmp_path):
    from lit_illada.convert import main as convert

    # Trained here: tied head, GQA (4 query heads on 2 key/value heads).
    run_dir, trained, _ = training_run(tmp_path / "run")
    convert(["to_hf", str(run_dir), str(tmp_path / "trained_hf")])
    # Imported LLaDA: untied head, MHA, vocabulary padded to 112 rows, LLaDA's own auto_map.
    llada_config = {**MHA_UNTIED, **LLADA_TRANSFORMERS_FIELDS}
    tensors = hf_tensors(reference_model(MHA_UNTIED, torch.float32))
    llada = write_hf_dir(tmp_path / "llada", tensors, llada_config)
    convert(["from_hf", str(llada), str(tmp_path / "lit")])
    convert(["to_hf", str(tmp_path / "lit"), str(tmp_path / "llada_hf")])

    exported = json.loads((tmp_path / "llada_hf" / "config.json").read_text())
    assert exported["model_type"] == "lit_illada" and exported["architectures"] == ["LitIlladaForMaskedLM"]
    assert set(exported["auto_map"]) == {"AutoConfig", "AutoModel", "AutoModelForMaskedLM"}
    assert {key: exported[key] for key in MHA_UNTIED} == MHA_UNTIED  # LLaDA's own fields are kept

    folders = {"trained_gqa_tied": tmp_path / "trained_hf", "llada_mha_untied": tmp_path / "llada_hf"}
    ids = {"trained_gqa_tied": ids_for(trained), "llada_mha_untied": torch.arange(100).view(2, 50) % 100}
    logits, facts = load_with_transformers(tmp_path, folders, ids)
    for name, folder in folders.items():
        with torch.no_grad():
            expected = lit_illada.load(folder).net(ids[name])
        assert expected.dtype == torch.float32
        torch.testing.assert_close(logits[name], expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(logits[name + "/AutoModel"], expected, atol=1e-5, rtol=0)
        assert facts[name] == {
            "causal_lm": "refused", "class": "LitIlladaForMaskedLM", "dtype": "torch.float32"
        }  # fmt: skip


def test_shipped_configuration_implements_the_switches_import_accepts():
    from lit_illada.checkpoints import hf
    from lit_illada.checkpoints.hf_modeling.configuration_lit_illada import SUPPORTED_SETTINGS

    assert SUPPORTED_SETTINGS == hf.ARCHITECTURE_SETTINGS


def test_push_to_hub_uploads_the_export_with_a_model_card(tmp_path, monkeypatch, capsys):
    from unittest import mock

    from huggingface_hub import HfApi

    from lit_illada.convert import main as convert

    run_dir, _, run_config = training_run(tmp_path / "run", "trainer.max_steps=37", "seed=4321")
    out = tmp_path / "export"
    uploaded = {}

    def upload_folder(self, *, repo_id, folder_path, **kwargs):  # what would go to the Hub
        uploaded.update({p.name: p.read_bytes() for p in Path(folder_path).iterdir()})
        return mock.Mock(commit_url=f"https://huggingface.co/{repo_id}/commit/abc")

    # Only the remote is mocked: HfApi's two network calls. Everything on disk is real.
    with (
        mock.patch.object(HfApi, "create_repo", autospec=True) as create_repo,
        mock.patch.object(HfApi, "upload_folder", autospec=True, side_effect=upload_folder) as upload,
    ):
        convert(["to_hf", str(run_dir), str(out), "--push-to-hub", "someone/tiny-llada", "--private"])

    create_repo.assert_called_once_with(
        mock.ANY, "someone/tiny-llada", repo_type="model", private=True, exist_ok=True
    )
    assert upload.call_args.kwargs["repo_id"] == "someone/tiny-llada"
    assert Path(upload.call_args.kwargs["folder_path"]) == out
    assert set(uploaded) == {"config.json", "model.safetensors", "README.md", *SHIPPED_CODE}
    assert "https://huggingface.co/someone/tiny-llada/commit/abc" in capsys.readouterr().out

    card = uploaded["README.md"].decode()
    assert card.startswith("---\nlibrary_name: transformers\n")
    assert 'AutoModelForMaskedLM.from_pretrained("someone/tiny-llada", trust_remote_code=True)' in card
    assert "| attention heads (key/value heads) | 4 (2) |" in card and "| mask token id | 259 |" in card
    assert f"`{run_dir / 'checkpoints' / 'last.ckpt'}`" in card
    # The training config, as the run resolved it.
    assert "max_steps: 37" in card and "seed: 4321" in card
    assert f"lr: {run_config['optimizer']['lr']}" in card and "_target_: lit_illada.diffusion." in card


def test_model_card_of_imported_weights_names_their_source(case, tmp_path):
    hf_dir, _, _ = case
    lit_dir = import_hf(hf_dir, tmp_path / "lit")
    card = (export_hf(lit_dir, tmp_path / "out") / "README.md").read_text()
    assert f"imported from the Hugging Face checkpoint `{hf_dir.resolve()}`" in card
    assert "No training configuration was recorded" in card


@pytest.mark.parametrize(
    "run_overrides, args, message",
    [
        ([], ["--push-to-hub", "a/b/c"], "--push-to-hub 'a/b/c' is not a Hub repo id"),
        ([], ["--private"], "--private applies to the repo that --push-to-hub creates; add --push-to-hub"),
        (["objective=autoregressive"], [], "trained with the autoregressive objective (causal attention)"),
    ],
    ids=["bad-repo-id", "private-without-push", "autoregressive-checkpoint"],
)
def test_to_hf_refuses_bad_input_before_writing(tmp_path, capsys, run_overrides, args, message):
    from unittest import mock

    from huggingface_hub import HfApi

    from lit_illada.convert import main as convert

    run_dir, _, _ = training_run(tmp_path / "run", *run_overrides)
    before = sorted(run_dir.rglob("*"))
    with mock.patch.object(HfApi, "create_repo") as create_repo, pytest.raises(SystemExit) as exit_:
        convert(["to_hf", str(run_dir), str(tmp_path / "out"), *args])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and message in err
    assert not (tmp_path / "out").exists() and sorted(run_dir.rglob("*")) == before
    create_repo.assert_not_called()


def test_failed_upload_says_the_folder_is_written_and_how_to_upload_it(tmp_path, capsys):
    from unittest import mock

    from huggingface_hub import HfApi

    from lit_illada.convert import main as convert

    run_dir, _, _ = training_run(tmp_path / "run")
    # The remote refuses (no token here); mocked so that no test ever reaches the network.
    refusal = OSError("401 Client Error: Unauthorized")
    with mock.patch.object(HfApi, "create_repo", side_effect=refusal), pytest.raises(SystemExit) as exit_:
        convert(["to_hf", str(run_dir), str(tmp_path / "out"), "--push-to-hub", "someone/tiny-llada"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1
    assert f"{tmp_path / 'out'} was written, but uploading it to someone/tiny-llada failed: 401" in err
    assert f"`hf upload someone/tiny-llada {tmp_path / 'out'}`" in err
    assert (tmp_path / "out" / "config.json").is_file()
