"""The embedded tasks as lm-eval tasks: local JSONL data + a task YAML, no hub.

    python -m lit_illada.lm_eval export_tasks <dir>       # writes the data and YAMLs into <dir>
    python -m lit_illada.lm_eval run --model lit_illada --model_args ckpt=runs/<name> \
        --include_path <dir> --tasks lit_mc_nextline

Only ``mc_nextline`` fits lm-eval's model (multiple choice over fixed choices); the
generation tasks need our own metrics (parse rate, NFE) and stay in ``lit_illada.evaluate``.
"""

from __future__ import annotations

import json
from pathlib import Path

from lit_illada.evaluation.tasks import MCNextLine

MC_NEXTLINE_YAML = """task: lit_mc_nextline
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{context}}}}"
doc_to_choice: choices
doc_to_target: answer
target_delimiter: ""
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""


def export_mc_nextline(out_dir: str | Path, limit: int = 200, seed: int = 0) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = out_dir / "mc_nextline.jsonl"
    rows = MCNextLine(limit=limit, seed=seed).examples()
    data.write_text("".join(json.dumps({"context": c, "choices": o, "answer": a}) + "\n" for c, o, a in rows))
    task = out_dir / "lit_mc_nextline.yaml"
    task.write_text(MC_NEXTLINE_YAML.format(data=data.resolve()))
    return task

