"""Short component names ("linear", "elbo", "sft_full") from resolved configs, and flat columns.

A resolved config keeps only ``_target_`` class paths; figures group by the conf/ file names
that chose them. Two conf files may share a class (masking/pretrain and masking/sft_full are
both AllPositions; four samplers are ConfidenceSampler with another ``score``), so a few
names need one more key. tests/test_analysis_naming.py checks every conf/ file maps back to
its own name.
"""

from __future__ import annotations

import re
from typing import Any

NOISE = {"LinearSchedule": "linear", "CosineSchedule": "cosine", "PolynomialSchedule": "polynomial"}
WEIGHTING = {"ElboWeighting": "elbo", "UnweightedLoss": "unweighted"}
OBJECTIVE = {"DiffusionObjective": "diffusion", "AutoregressiveObjective": "autoregressive"}
SCORING = {
    "LikelihoodScorer": "likelihood",
    "ConfidenceScorer": "confidence",
    "AutoregressiveScorer": "autoregressive",
}
SAMPLER = {
    "ThresholdSampler": "threshold",
    "FactorSampler": "factor",
    "EntropyBoundedSampler": "eb",
    "VariableLengthSampler": "variable_length",
}
# ConfidenceSampler: the conf file is named after its ranking score (probability is "confidence").
CONFIDENCE_SCORES = {
    "probability": "confidence",
    "entropy": "entropy",
    "margin": "margin",
    "random": "random",
}


def class_name(target: Any) -> str | None:
    return target.rsplit(".", 1)[-1] if isinstance(target, str) and target else None


def _lookup(table: dict[str, str], node: Any) -> str | None:
    name = class_name(node.get("_target_")) if isinstance(node, dict) else None
    return table.get(name, name) if name else None  # an unknown class keeps its own name


def sampler_name(node: Any) -> str | None:
    if not isinstance(node, dict):
        return None
    name = class_name(node.get("_target_"))
    if name == "ConfidenceSampler":
        return CONFIDENCE_SCORES.get(node.get("score", "probability"), f"confidence-{node.get('score')}")
    return SAMPLER.get(name, name) if name else None


def masking_name(node: Any, stage_name: str | None) -> str | None:
    name = class_name(node.get("_target_")) if isinstance(node, dict) else None
    if name == "ResponseOnly":
        return "sft_response"
    if name == "AllPositions":  # the same class in pretraining and in iLLaDA's SFT
        return "sft_full" if stage_name == "sft" else "pretrain"
    return name


def attention_name(model: Any) -> str | None:
    if not isinstance(model, dict) or model.get("n_heads") is None or model.get("n_kv_heads") is None:
        return None
    return "mha" if model["n_kv_heads"] == model["n_heads"] else "gqa"


def component_columns(config: dict) -> dict[str, Any]:
    """The friendly columns of a resolved training config (absent parts give None)."""
    return {
        "noise": _lookup(NOISE, config.get("noise")),
        "weighting": _lookup(WEIGHTING, config.get("weighting")),
        "masking": masking_name(config.get("masking"), config.get("stage_name")),
        "objective": _lookup(OBJECTIVE, config.get("objective")),
        "sampler": sampler_name(config.get("sampler")),
        "scoring": _lookup(SCORING, config.get("scoring")),  # set by an evaluation
        "attention": attention_name(config.get("model")),
        "stage": config.get("stage_name"),
        "seed": config.get("seed"),
    }


_REPR = re.compile(r"^(\w+)\((.*)\)$", re.S)


def from_repr(text: Any) -> dict | None:
    """``ConfidenceSampler(..., score='entropy', ...)`` -> {"_target_": ..., "score": ...}.

    results.json written before it recorded its config has only these reprs.
    """
    match = _REPR.match(text) if isinstance(text, str) else None
    if match is None:
        return None
    node: dict[str, Any] = {"_target_": match.group(1)}
    score = re.search(r"\bscore='(\w+)'", match.group(2))
    if score:
        node["score"] = score.group(1)
    return node


def evaluation_columns(results: dict) -> dict[str, Any]:
    """The sampler and scoring an evaluation really used, by their conf names."""
    config = results.get("config") or {}
    sampler = config.get("sampler") or from_repr(results.get("sampler"))
    # The scorer repr wins: an AR checkpoint is scored by exact likelihood whatever scoring= said.
    scorer = from_repr(results.get("scorer")) or config.get("scoring")
    columns = {"sampler": sampler_name(sampler), "scoring": _lookup(SCORING, scorer)}
    if results.get("objective") == "autoregressive":
        columns["sampler"] = "autoregressive"  # AR decodes left to right; the sampler is unused
    if results.get("objective"):
        columns["objective"] = results["objective"]
    return {key: value for key, value in columns.items() if value is not None}


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> dotted keys; lists stay values (``optimizer.betas`` -> [0.9, 0.95])."""
    if not isinstance(node, dict):
        return {prefix: node} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat


def task_columns(tasks: dict) -> dict[str, Any]:
    """results.json ``tasks`` -> ``<task>/<metric>`` columns (numbers only)."""
    return {
        f"{task}/{metric}": value
        for task, metrics in (tasks or {}).items()
        if isinstance(metrics, dict)
        for metric, value in metrics.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }
