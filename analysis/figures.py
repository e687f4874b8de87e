"""Figures drawn from run records with matplotlib, written to files.

Each figure function takes the table of ``load_runs`` (``sft_epochs``: of ``load_epochs``),
writes ``<out_dir>/<name>.png``, ``.pdf`` and ``.md`` (the plotted data as a markdown table)
and returns the plotted data as a tidy DataFrame, its file paths in ``.attrs["paths"]``.
A table without what a figure needs raises NotEnoughData, saying what is missing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

# Importing this module leaves matplotlib's backend as it is (a notebook keeps its inline plots);
# `python -m analysis` picks Agg itself.
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analysis.records import UnreadableRecord
from analysis.reference import reference_rows
from analysis.sources import load_history
from analysis.tables import to_markdown

log = logging.getLogger(__name__)

LOSS_CURVES = (("train/nll", "train NLL bound"), ("val/nll", "val NLL bound"))

# Task scores, most informative first: the default y of the quality figures.
SCORES = (
    "docstring_to_body/edit_similarity",
    "infill/token_accuracy",
    "mc_nextline/accuracy",
    "docstring_to_body/exact_match",
    "docstring_to_body/parse_rate",
    "sort/exact_match",  # the synthetic task of sweeps/denoising_steps.yaml and sweeps/sft_epochs.yaml
)
UNITS = {
    "nll": "nats / token",
    "bpb": "bits / byte",
    "nfe": "denoiser calls per sample",
    "seconds_per_sample": "s / sample",
    "tokens_per_s": "tokens / s",
    "edit_similarity": "0-1, higher is better",
    "accuracy": "fraction correct",
    "token_accuracy": "fraction of tokens",
    "exact_match": "fraction",
    "parse_rate": "fraction",
}
LABELS = {
    "val/nll": "validation NLL bound (nats / token)",
    "best/val/nll": "best validation NLL bound (nats / token)",
    "train/nll": "train NLL bound (nats / token)",
    "val/bpb": "validation bits per byte",
    "train/mfu_model": "train MFU of model FLOPs (LM head at every position)",
    "train/mfu_executed": "train MFU of executed FLOPs (LM head at masked positions)",
    "train/mfu": "train MFU of model FLOPs (older runs: attention counted at half)",
}
MASKING_LABELS = {
    "sft_response": "sft_response (LLaDA: prompt never masked)",
    "sft_full": "sft_full (iLLaDA: prompt masked too)",
}


class NotEnoughData(ValueError):
    """The table lacks the columns or rows a figure needs."""


def label(column: str) -> str:
    """An axis label with units: ``docstring_to_body/edit_similarity`` ->
    ``docstring_to_body: edit similarity (0-1, higher is better)``."""
    if column in LABELS:
        return LABELS[column]
    head, _, metric = column.rpartition("/")
    unit = UNITS.get(metric)
    text = f"{head}: {metric.replace('_', ' ')}" if head else metric.replace("_", " ")
    return f"{text} ({unit})" if unit else text


def pick_score(frame: pd.DataFrame, wanted: str | None = None) -> str:
    """``wanted``, else the first of SCORES the table holds values of."""
    candidates = [wanted] if wanted else SCORES
    for column in candidates:
        if column in frame and pd.to_numeric(frame[column], errors="coerce").notna().any():
            return column
    raise NotEnoughData(f"no values of {' or '.join(candidates)}: were the runs evaluated (results.json)?")


def _need(frame: pd.DataFrame, columns: list[str], why: str) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame]
    if missing:
        raise NotEnoughData(f"no {', '.join(missing)} column: {why}")
    rows = frame.dropna(subset=columns)
    if rows.empty:
        raise NotEnoughData(f"no run has all of {', '.join(columns)}: {why}")
    return rows


def _summary(rows: pd.DataFrame, by: list[str], metric: str) -> pd.DataFrame:
    """mean, std (over seeds and other settings; NaN for one run) and n of ``metric`` per group."""
    values = rows.assign(value=pd.to_numeric(rows[metric]))
    grouped = values.groupby(by, sort=True)["value"]
    return grouped.agg(mean="mean", std="std", n="count").reset_index()


def save(fig, data: pd.DataFrame, out_dir: str | Path, name: str) -> pd.DataFrame:

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf", out_dir / f"{name}.md"]
    fig.tight_layout()
    fig.savefig(paths[0], dpi=150)
    fig.savefig(paths[1])
    plt.close(fig)
    paths[2].write_text(to_markdown(data, floatfmt=".4g"))
    data.attrs["paths"] = paths
    return data


# -- figures ----------------------------------------------------------------------------------


def plot_loss_curves(metrics: pd.DataFrame, out: str | Path, title: str = "") -> Path:
    """Training and validation NLL bound (nats/token) against the optimizer step (one run).

    A bare ``Figure``, not pyplot: the training command draws this after a run, whatever
    backend (and reachable display) its process has."""
    fig = Figure(figsize=(6.4, 4.0), dpi=120)
    ax = fig.subplots()
    for column, name in LOSS_CURVES:
        if column in metrics:
            rows = metrics[["step", column]].dropna()
            style = {"marker": "o"} if column.startswith("val") else {"alpha": 0.7}
            ax.plot(rows["step"], rows[column], label=name, **style)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("NLL bound (nats / token)")
    ax.set_title(title or "loss curve")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out)
    return out


def sft_epochs(
    epochs: pd.DataFrame, out_dir: str | Path, metric: str | None = None, agg: str = "mean"
) -> pd.DataFrame:
    """Task score against SFT epoch, one line per masking scope (the paper's Figure 1).

    ``agg="mean"``: mean over the runs of a scope (seeds, learning rates), error bars one
    standard deviation; ``agg="max"``: the best run at each epoch.
    """
    if agg not in ("mean", "max"):
        raise ValueError(f"agg={agg!r}: choose mean or max")
    if epochs.empty:
        raise NotEnoughData(
            "no per-epoch evaluations (results/epoch-<k>.json or W&B eval runs with an epoch)"
        )
    metric = pick_score(epochs, metric)
    rows = _need(epochs, ["epoch", "masking", metric], "it needs load_epochs() of SFT runs")
    data = _summary(rows, ["masking", "epoch"], metric)
    if agg == "max":
        data["mean"] = rows.groupby(["masking", "epoch"])[metric].max().to_numpy()
        data["std"] = float("nan")
    data = data.rename(columns={"mean": "value"}).astype({"epoch": int})
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for masking, line in data.groupby("masking"):
        ax.errorbar(
            line["epoch"],
            line["value"],
            yerr=line["std"].fillna(0),
            marker="o",
            capsize=3,
            label=MASKING_LABELS.get(masking, masking),
        )
    ax.set_xlabel("SFT epoch")
    ax.set_xticks(sorted(data["epoch"].unique()))
    ax.set_ylabel(label(metric))
    runs = rows.groupby("masking")["run"].nunique().to_dict()
    how = "mean ± std over runs" if agg == "mean" else "best run"
    ax.set_title(
        f"Score by SFT epoch, {how}\n(runs per scope: {', '.join(f'{k} {v}' for k, v in runs.items())})"
    )
    ax.grid(alpha=0.3)
    ax.legend(title="masking scope")
    return save(fig, data.assign(metric=metric), out_dir, "sft_epochs")


def pareto_front(cost: pd.Series, quality: pd.Series) -> pd.Series:
    """True where no other point is at most as costly and at least as good, and better in one."""
    points = list(zip(cost, quality, strict=True))
    return pd.Series(
        [not any(c2 <= c and q2 >= q and (c2 < c or q2 > q) for c2, q2 in points) for c, q in points],
        index=cost.index,
    )


def _quality_vs(
    frame: pd.DataFrame, out_dir: str | Path, metric: str | None, cost_metric: str, name: str, cost_label: str
) -> pd.DataFrame:
    metric = pick_score(frame, metric)
    task = metric.split("/", 1)[0]
    cost = f"{task}/{cost_metric}"
    rows = _need(frame, ["sampler", metric, cost], f"it needs {task} evaluations that record {cost_metric}")
    data = pd.DataFrame(
        {
            "run": rows["run"],
            "sampler": rows["sampler"],
            "cost": pd.to_numeric(rows[cost]),
            "quality": pd.to_numeric(rows[metric]),
        }
    ).reset_index(drop=True)
    data["pareto"] = pareto_front(data["cost"], data["quality"])
    fig, ax = plt.subplots(figsize=(7.6, 4.4))
    for sampler, points in data.groupby("sampler"):
        ax.scatter(points["cost"], points["quality"], label=sampler, s=36, zorder=3)
    front = data[data["pareto"]].sort_values("cost")
    ax.plot(front["cost"], front["quality"], color="black", linestyle="--", drawstyle="steps-post", zorder=2)
    ax.scatter(
        front["cost"],
        front["quality"],
        s=140,
        facecolors="none",
        edgecolors="black",
        zorder=4,
        label="Pareto front",
    )
    if data["cost"].min() > 0 and data["cost"].max() / data["cost"].min() > 20:
        ax.set_xscale("log")
    ax.set_xlabel(cost_label)
    ax.set_ylabel(label(metric))
    ax.set_title(
        f"{task}: score against {COST_NAMES[cost_metric]}\n(up and left is better; ringed: Pareto front)"
    )
    ax.grid(alpha=0.3)
    ax.legend(title="sampler", fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    return save(fig, data.assign(metric=metric, cost_metric=cost), out_dir, name)


COST_NAMES = {"nfe": "NFE", "seconds_per_sample": "latency"}


def quality_vs_nfe(frame: pd.DataFrame, out_dir: str | Path, metric: str | None = None) -> pd.DataFrame:
    """Task score against denoiser calls per sample, one colour per sampler, Pareto front ringed."""
    return _quality_vs(frame, out_dir, metric, "nfe", "quality_vs_nfe", "NFE (denoiser calls per sample)")


def quality_vs_latency(frame: pd.DataFrame, out_dir: str | Path, metric: str | None = None) -> pd.DataFrame:
    """Task score against seconds per sample (measured wall time), Pareto front ringed."""
    return _quality_vs(
        frame, out_dir, metric, "seconds_per_sample", "quality_vs_latency", "latency (seconds per sample)"
    )


def _count_labels(ax, bars, tops, counts) -> None:
    """``n=<runs>`` above each bar's error bar."""
    for bar, top, n in zip(bars, tops, counts, strict=True):
        if n == n:  # NaN: no runs behind this bar
            ax.annotate(
                f"n={int(n)}",
                (bar.get_x() + bar.get_width() / 2, top),
                ha="center",
                va="bottom",
                fontsize="small",
                xytext=(0, 3),
                textcoords="offset points",
            )


def _bars(ax, data: pd.DataFrame, group: str, series: str, order: tuple = ()) -> list[float]:
    """Grouped bars of the mean with std error bars and n above each; the x of each group."""
    groups = list(dict.fromkeys(data[group]))
    found = list(dict.fromkeys(data[series]))
    names = [n for n in order if n in found] + [n for n in found if n not in order]
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        part = data[data[series] == name].set_index(group).reindex(groups)
        xs = [g + (i - (len(names) - 1) / 2) * width for g in range(len(groups))]
        std = part["std"].fillna(0)
        bars = ax.bar(xs, part["mean"], width, yerr=std, capsize=3, label=name)
        _count_labels(ax, bars, part["mean"] + std, part["n"])
    ax.set_xticks(range(len(groups)), groups)
    return list(range(len(groups)))


def scoring(frame: pd.DataFrame, out_dir: str | Path, metrics: list[str] | None = None) -> pd.DataFrame:
    """Likelihood vs confidence scoring: each multiple-choice task's accuracy (grouped bars).

    Only multiple-choice tasks use the scorer; by default every ``<task>/accuracy`` column.
    Bars are means over runs, error bars one standard deviation.
    """
    metrics = metrics or [c for c in frame.columns if str(c).endswith("/accuracy")]
    if not metrics:
        raise NotEnoughData("no <task>/accuracy column: it needs multiple-choice evaluations")
    parts = []
    for metric in metrics:
        rows = frame.dropna(subset=["scoring", metric]) if "scoring" in frame else frame.iloc[0:0]
        if not rows.empty:
            parts.append(_summary(rows, ["scoring"], metric).assign(task=metric.split("/")[0], metric=metric))
    data = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if data.empty or data["scoring"].nunique() < 2:
        found = sorted(data["scoring"].unique()) if not data.empty else []
        raise NotEnoughData(f"it needs evaluations with two scorers; found {found or 'none'}")
    data = data[["task", "metric", "scoring", "mean", "std", "n"]]
    fig, ax = plt.subplots(figsize=(max(6.4, 2.4 * data["task"].nunique() + 2), 4.4))
    xs = _bars(ax, data, "task", "scoring", order=("likelihood", "confidence"))
    for x, task in zip(xs, dict.fromkeys(data["task"]), strict=True):
        if f"{task}/chance" in frame and frame[f"{task}/chance"].notna().any():
            ax.hlines(
                frame[f"{task}/chance"].mean(),
                x - 0.45,
                x + 0.45,
                colors="grey",
                linestyles=":",
                label="chance" if x == xs[0] else None,
            )
    ax.set_ylabel("accuracy (fraction correct)")
    ax.set_xlabel("multiple-choice task")
    ax.set_title("Likelihood vs confidence scoring\n(mean ± std over runs; n runs per bar)")
    ax.set_ylim(0, min(1.0, float((data["mean"] + data["std"].fillna(0)).max()) * 1.25) or 1.0)
    ax.legend(title="scoring", loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.grid(alpha=0.3, axis="y")
    return save(fig, data, out_dir, "scoring")


ABLATION = ["noise", "weighting", "attention"]


def ablation(frame: pd.DataFrame, out_dir: str | Path, metric: str = "val/nll") -> pd.DataFrame:
    """``metric`` per noise schedule x loss weighting x attention: mean, std over seeds, n.

    Pretraining runs of the diffusion objective only (the schedule and weighting mean nothing
    to the AR baseline, and SFT losses are on other data). Runs of one setting that differ in
    anything else (steps, lr) are averaged too: filter the table first.
    """
    rows = _need(frame, [*ABLATION, metric], "it needs training runs with summaries")
    for column, keep in (("stage", "pretrain"), ("objective", "diffusion")):
        if column in rows:
            rows = rows[rows[column].isna() | (rows[column] == keep)]
    if rows.empty:
        raise NotEnoughData("no pretraining runs of the diffusion objective")
    data = _summary(rows, ABLATION, metric)
    if len(data) < 2:
        raise NotEnoughData(
            f"every run has the same setting {tuple(data.iloc[0][ABLATION])}; nothing to compare"
        )
    data["setting"] = data[ABLATION].astype(str).agg("\n".join, axis=1)
    fig, ax = plt.subplots(figsize=(max(6.4, 1.1 * len(data) + 1.5), 4.6))
    std = data["std"].fillna(0)
    bars = ax.bar(
        range(len(data)), data["mean"], yerr=std, capsize=4, color=[f"C{i % 10}" for i in range(len(data))]
    )
    _count_labels(ax, bars, data["mean"] + std, data["n"])
    ax.set_xticks(range(len(data)), data["setting"], fontsize="small")
    ax.set_xlabel("noise schedule / loss weighting / attention")
    ax.set_ylabel(label(metric) + ("\nlower is better" if "nll" in metric or "bpb" in metric else ""))
    low, high = (data["mean"] - data["std"].fillna(0)).min(), (data["mean"] + data["std"].fillna(0)).max()
    pad = (high - low) * 0.5 or abs(high) * 0.05 or 1.0
    ax.set_ylim(low - pad, high + pad)  # differences between settings, not the distance from 0
    ax.set_title("Objective ablation\n(mean ± std over seeds; y axis zoomed)")
    ax.grid(alpha=0.3, axis="y")
    return save(fig, data.drop(columns="setting").assign(metric=metric), out_dir, "ablation")


MAX_LEGEND = 12


def loss_curves(
    runs: pd.DataFrame | dict[str, pd.DataFrame],
    out_dir: str | Path,
    train: bool = False,
    metric: str = "val/nll",
    api: Any = None,
) -> pd.DataFrame:
    """``metric`` (and with ``train``, ``train/nll``) against step for several runs on one axis.

    ``runs``: a load_runs table (histories read with load_history) or {name: history}.
    """

    if isinstance(runs, pd.DataFrame):
        with_history = runs[runs["history"].notna()] if "history" in runs else runs.iloc[0:0]
        histories = {}
        for _, row in with_history.iterrows():
            try:
                histories[row["run"]] = load_history(row, api=api)
            except UnreadableRecord as err:  # one damaged run must not hide every other curve
                log.warning("warning: skipped run %s: %s", row["run"], err)
    else:
        histories = dict(runs)
    columns = [metric, *(["train/nll"] if train else [])]
    parts = [
        history[["step", column]].dropna().rename(columns={column: "value"}).assign(run=name, metric=column)
        for name, history in histories.items()
        for column in columns
        if column in history
    ]
    data = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if data.empty:
        raise NotEnoughData(f"no run has a per-step history of {metric}")
    data = data[["run", "metric", "step", "value"]]
    fig, ax = plt.subplots(figsize=(7.2, 4.4))
    for i, (name, curve) in enumerate(data.groupby("run", sort=False)):
        color = f"C{i % 10}"
        shown = name if i < MAX_LEGEND else None
        val = curve[curve["metric"] == metric]
        ax.plot(val["step"], val["value"], marker="o", markersize=3, color=color, label=shown)
        if train:
            tr = curve[curve["metric"] == "train/nll"]
            ax.plot(tr["step"], tr["value"], color=color, alpha=0.5, linestyle="--", linewidth=1)
    ax.set_xlabel("optimizer step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("NLL bound (nats / token)" if train and "nll" in metric else label(metric))
    extra = (
        f"; +{data['run'].nunique() - MAX_LEGEND} runs not in the legend"
        if data["run"].nunique() > MAX_LEGEND
        else ""
    )
    ax.set_title(f"Loss curves: {metric}" + (" (solid), train/nll (dashed)" if train else "") + extra)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", title="run")
    return save(fig, data, out_dir, "loss_curves")


def reference_table(frame: pd.DataFrame | None, out_dir: str | Path) -> pd.DataFrame:
    """The paper's benchmark scores beside ours (markdown only): reference_table.md."""

    data = reference_rows(frame)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "reference_table.md"
    note = (
        "Paper numbers (percent) from REFERENCE.md; `measured`: our best run on a task of the same name "
        "(Base: pretrained runs, Instruct: SFT runs).\n\n"
    )
    path.write_text(note + to_markdown(data, floatfmt=".1f"))
    data.attrs["paths"] = [path]
    return data


FIGURES = {
    "sft_epochs": sft_epochs,
    "quality_vs_nfe": quality_vs_nfe,
    "quality_vs_latency": quality_vs_latency,
    "scoring": scoring,
    "ablation": ablation,
    "loss_curves": loss_curves,
    "reference_table": reference_table,
}
