"""The findings table and figures from what ``examples/findings/*.py`` recorded.

    python -m analysis findings --source runs/findings --out docs

Reads ``<source>/<finding>/result.json`` and writes ``<out>/findings.md`` (one row per finding:
the claim and its source, the command, each measured effect with its 95% interval over seeds,
the verdict) and ``<out>/figures/findings_<finding>.png``: every plotted value carries its
interval and n.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib.pyplot as plt

ORDER = ("sft_epochs", "scoring", "quality_vs_nfe", "diffusion_vs_ar", "variable_length", "repetition")


def load_findings(source: str | Path) -> dict[str, dict]:
    found = {path.parent.name: json.loads(path.read_text()) for path in sorted(Path(source).glob("*/result.json"))}
    if not found:
        raise FileNotFoundError(f"{source}: no <finding>/result.json; run examples/findings.sh first")
    return dict(sorted(found.items(), key=lambda item: ORDER.index(item[0]) if item[0] in ORDER else len(ORDER)))


def _fmt(effect: dict) -> str:
    if effect["n"] < 2 or effect["low"] is None or (isinstance(effect["low"], float) and math.isnan(effect["low"])):
        return f"{effect['mean']:+.3f} (n={effect['n']}, no interval)"
    return f"{effect['mean']:+.3f} [{effect['low']:+.3f}, {effect['high']:+.3f}] (n={effect['n']})"


def findings_table(findings: dict[str, dict]) -> str:
    lines = [
        "| # | finding | claim (source) | command | measured effect, 95% CI over seeds | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for number, (name, result) in enumerate(findings.items(), start=1):
        effects = "<br>".join(f"{e['name']} (expected {e['expect']}): {_fmt(e)}" for e in result["effects"])
        lines.append(
            f"| {number} | {name} | {result['claim']} ({result['source']}) | `{result['command']}` | {effects} | "
            f"**{result['verdict']}** |"
        )
    return "\n".join(lines) + "\n"


def _interval_bars(ax, labels: list[str], cells: list[dict]) -> None:
    means = [c["mean"] for c in cells]
    errors = [[c["mean"] - c["low"] for c in cells], [c["high"] - c["mean"] for c in cells]]
    errors = [[0 if math.isnan(v) else v for v in side] for side in errors]
    ax.bar(range(len(cells)), means, yerr=errors, capsize=4, color="#4C72B0")
    ax.set_xticks(range(len(cells)), [f"{label}\n(n={c['n']})" for label, c in zip(labels, cells, strict=True)],
                  rotation=30, ha="right", fontsize=7)


def plot_effects(name: str, result: dict, out: Path) -> Path:
    """The finding's effects with their intervals, then its main comparisons (one panel each)."""
    panels = _main_panels(name, result)
    fig, axes = plt.subplots(1, 1 + len(panels), figsize=(6 * (1 + len(panels)), 4.5), squeeze=False)
    axes = axes[0]
    _interval_bars(axes[0], [e["name"] for e in result["effects"]], result["effects"])
    axes[0].axhline(0, color="black", linewidth=0.8)
    axes[0].set_title(f"{name}: effects (95% CI over seeds) - {result['verdict']}", fontsize=9)
    for draw, ax in zip(panels, axes[1:], strict=True):
        draw(ax)
    fig.tight_layout()
    path = out / f"findings_{name}.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _front(ax, title: str, cells: dict, seeds: int) -> None:
    """Exact match against NFE: one line per sampler policy (the part of a label before "/"),
    through its settings in NFE order, each point named by its setting."""
    families: dict[str, list] = {}
    for label, cell in cells.items():
        family, _, setting = label.partition("/")
        families.setdefault(family, []).append((cell["nfe"]["mean"], setting, cell["exact_match"]))
    for family, points in families.items():
        points.sort(key=lambda point: point[0])
        nfe = [x for x, _, _ in points]
        acc = [cell["mean"] for _, _, cell in points]
        low = [cell["mean"] - max(cell["low"], 0.0) for _, _, cell in points]  # a rate's interval, within [0, 1]
        high = [min(cell["high"], 1.0) - cell["mean"] for _, _, cell in points]
        line = ax.errorbar(nfe, acc, yerr=[low, high], fmt="o-", capsize=3, label=family, alpha=0.85)
        for x, y, (_, setting, _) in zip(nfe, acc, points, strict=True):
            ax.annotate(setting.removeprefix("steps="), (x, y), textcoords="offset points", xytext=(3, 3),
                        fontsize=5, color=line[0].get_color())
    ax.set_xscale("log")
    ax.set_xlabel("NFE (denoiser calls per answer, log)")
    ax.set_ylabel(f"exact match (mean, 95% CI, n={seeds} seeds)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6, ncol=2)


def _main_panels(name: str, result: dict) -> list:
    """Functions that each draw one panel of the finding's main comparison."""
    summary = result.get("summary", {})
    if name == "quality_vs_nfe":
        # {task: {setting: cell}}, or {setting: cell} as written before the per-task record.
        by_task = summary if all("exact_match" not in v for v in summary.values()) else {"": summary}
        seeds = len({p["seed"] for p in result["points"]})
        return [lambda ax, task=task, cells=cells: _front(ax, task, cells, seeds) for task, cells in by_task.items()]
    if name == "sft_epochs":
        def curves(ax):
            # a second score per epoch (dashed) where the record has one: its name in "second_score"
            second = result.get("second_score", "second score")
            drawn_second = False
            for scope, cell in summary.items():
                color = None  # the scope's colour, chosen by its first curve
                for key, style, label in (("by_epoch", "o-", scope), ("second_by_epoch", "s--", f"{scope} ({second})")):
                    curve = cell.get(key)
                    if not curve:
                        continue
                    drawn_second |= key != "by_epoch"
                    epochs = range(1, len(curve) + 1)
                    line, = ax.plot(epochs, [c["mean"] for c in curve], style, label=label, color=color)
                    color = line.get_color()
                    # scores are rates: their t interval is drawn within [0, 1]
                    ax.fill_between(epochs, [max(c["low"], 0.0) for c in curve], [min(c["high"], 1.0) for c in curve],
                                    alpha=0.2, color=color)
            ax.set_xlabel("SFT epoch")
            questions = result.get("test_questions")
            seeds = len({p["seed"] for p in result["points"]})
            score = result.get("score", "exact match")
            score += f" (solid), {second} (dashed)" if drawn_second else ""
            ax.set_ylabel(f"{score}\n95% CI, n={seeds} seeds", fontsize=8)
            if questions:
                ax.set_title(f"{questions} held-out questions per checkpoint", fontsize=9)
            ax.legend()
        return [curves]
    cells = [(f"{label}: {metric}", value) for label, metrics in summary.items() if isinstance(metrics, dict)
             for metric, value in metrics.items() if isinstance(value, dict) and "mean" in value]
    if not cells:
        return []

    def bars(ax):
        _interval_bars(ax, [c[0] for c in cells], [c[1] for c in cells])
        ax.set_title("measured values (95% CI over seeds)", fontsize=9)
    return [bars]


def write_findings(source: str | Path, out: str | Path) -> list[Path]:
    findings = load_findings(source)
    out = Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    figures = [plot_effects(name, result, out / "figures") for name, result in findings.items()]
    text = ["# Findings", "",
            "Each row is one command of `examples/findings.sh` (CPU presets fixed in steps; seeds "
            "and presets in the record). Verdict: *reproduced* when every effect's 95% interval "
            "excludes 0 in the expected direction (holds 0 where no difference is expected, `=0`), "
            "*not reproduced* when one contradicts it, else *inconclusive*.", "", findings_table(findings)]
    for name, result in findings.items():
        text += [f"## {name}", "", f"{result['claim']} — {result['source']}.", "",
                 f"Preset: {result['preset']}; training throughput {result.get('tokens_per_s', 0):,.0f} tokens/s.", "",
                 f"![{name}](figures/findings_{name}.png)", ""]
        for key, value in (result.get("notes") or {}).items():
            text.append(f"- {key}: {_fmt({**value, 'mean': value['mean']})}")
        text.append("")
    path = out / "findings.md"
    path.write_text("\n".join(text))
    return [path, *figures]
