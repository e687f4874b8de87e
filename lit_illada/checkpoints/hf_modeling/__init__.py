"""The transformers code that ``convert to_hf`` copies next to exported weights.

``configuration_lit_illada.py`` and ``modeling_lit_illada.py`` are written to be copied, not
imported from here: inside an exported folder they are what
``transformers.AutoModel.from_pretrained(folder, trust_remote_code=True)`` runs, so they
import only torch, transformers and each other (never lit_illada). This ``__init__`` stays
free of those imports, so lit_illada works without transformers installed.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

MODEL_TYPE = "lit_illada"
CONFIG_MODULE = "configuration_lit_illada"
MODELING_MODULE = "modeling_lit_illada"
CONFIG_CLASS = "LitIlladaConfig"
MODEL_CLASS = "LitIlladaForMaskedLM"
SOURCE_FILES = (f"{CONFIG_MODULE}.py", f"{MODELING_MODULE}.py")

# config.json entries that point transformers at the copied code. A bidirectional masked
# diffusion LM predicts tokens at masked positions from both sides: that is a masked LM, so
# AutoModelForMaskedLM. AutoModel maps to the same class because LLaDA's own scripts load
# with AutoModel and read `.logits`. No AutoModelForCausalLM: its generate() and lm-eval's
# HF model decode left to right, which silently computes the wrong thing for this model.
TRANSFORMERS_FIELDS = {
    "model_type": MODEL_TYPE,
    "architectures": [MODEL_CLASS],
    "auto_map": {
        "AutoConfig": f"{CONFIG_MODULE}.{CONFIG_CLASS}",
        "AutoModel": f"{MODELING_MODULE}.{MODEL_CLASS}",
        "AutoModelForMaskedLM": f"{MODELING_MODULE}.{MODEL_CLASS}",
    },
}


def copy_sources(folder: Path) -> None:
    """Copy the configuration and modeling files into ``folder``."""
    package = resources.files(__name__)
    for name in SOURCE_FILES:
        with resources.as_file(package / name) as source:
            shutil.copyfile(source, Path(folder) / name)
