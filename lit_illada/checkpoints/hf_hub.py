"""Uploading an exported folder to the Hugging Face Hub (``convert to_hf --push-to-hub``).

``huggingface_hub`` does the work (the ``hf`` extra); it is imported on use, so exporting to a
local folder never needs it. Authentication is the library's own: ``hf auth login`` or
``HF_TOKEN``. Errors are raised as ValueError so that ``convert`` reports them in one line.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

# Remote weight files that a new upload replaces: a stale index left on the Hub would make
# transformers load old shards instead of a new single model.safetensors.
STALE_REMOTE_WEIGHTS = ["model*.safetensors", "model.safetensors.index.json"]


def _hub() -> ModuleType:
    try:
        import huggingface_hub  # noqa: PLC0415 - optional dependency (the hf extra)
    except ImportError:
        raise ValueError(
            "--push-to-hub needs huggingface_hub; install it with `pip install 'lit_illada[hf]'`"
        ) from None
    return huggingface_hub


def check_repo_id(repo_id: str) -> None:
    """Refuse a malformed repo id before anything is exported."""
    _hub()
    from huggingface_hub.utils import HFValidationError, validate_repo_id  # noqa: PLC0415

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ValueError(f"--push-to-hub {repo_id!r} is not a Hub repo id ({err})") from None


def push_folder(folder: Path, repo_id: str, *, private: bool = False) -> str:
    """Create the model repo if needed and upload ``folder`` as one commit; returns the commit URL."""
    api = _hub().HfApi()
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            repo_type="model",
            commit_message="Upload model exported by lit_illada (convert to_hf)",
            delete_patterns=STALE_REMOTE_WEIGHTS,
        )
    except Exception as err:  # auth, network and HTTP errors differ across huggingface_hub versions
        raise ValueError(
            f"{folder} was written, but uploading it to {repo_id} failed: {err}. Log in with "
            f"`hf auth login` (or set HF_TOKEN), then upload the folder with `hf upload {repo_id} {folder}`"
        ) from err
    return str(getattr(commit, "commit_url", commit))
