"""Chat templates for ``--apply_chat_template``: found beside the checkpoint's tokenizer and
rendered as Hugging Face renders them (a sandboxed Jinja environment with the same options,
filters and globals), so an instruct checkpoint sees the prompt format it was tuned on.

Where a template is looked for, in the tokenizer's folder: ``chat_template.jinja``,
``chat_template.json`` and the ``chat_template`` key of ``tokenizer_config.json`` (a string, or
a list of ``{"name", "template"}`` for named templates). A hub tokenizer's template is read with
``transformers`` when it is installed.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from jinja2.exceptions import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

from lit_illada.config.errors import ConfigError

Templates = dict[str, str]  # name -> template; a single template is named "default"


def find_templates(tokenizer) -> Templates:
    """The chat templates of ``tokenizer`` (an ``HFTokenizer``); empty when it has none."""
    path = getattr(tokenizer, "path", None)
    if path is None:
        return {}
    local = Path(path).expanduser()
    if local.exists():
        return _folder_templates(local if local.is_dir() else local.parent)
    return _hub_templates(str(path))


def select(templates: Templates, name: str | None, where: str) -> str:
    """The template called ``name`` (None: the default one)."""
    if not templates:
        raise ConfigError(
            f"--apply_chat_template: {where} has no chat template (looked for chat_template.jinja, "
            "chat_template.json and tokenizer_config.json's chat_template beside its tokenizer.json); "
            "add one there, or drop --apply_chat_template"
        )
    key = name or "default"
    if key not in templates:
        raise ConfigError(
            f"--apply_chat_template {key}: not a chat template of {where}; choose one of {sorted(templates)}"
        )
    return templates[key]


def render(
    template: str, messages: list[dict], add_generation_prompt: bool, special_tokens: dict[str, str]
) -> str:
    try:
        return _compiled(template).render(
            messages=messages, add_generation_prompt=add_generation_prompt, **special_tokens
        )
    except TemplateError as err:
        raise ConfigError(f"--apply_chat_template: the chat template failed to render: {err}") from err


@lru_cache(maxsize=8)
def _compiled(template: str):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = _tojson  # Jinja's own escapes HTML, which a prompt must not
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template)


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False) -> str:
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _raise(message: str):
    raise TemplateError(message)


def _folder_templates(folder: Path) -> Templates:
    if (folder / "chat_template.jinja").is_file():
        return {"default": (folder / "chat_template.jinja").read_text(encoding="utf-8")}
    for name in ("chat_template.json", "tokenizer_config.json"):
        file = folder / name
        if file.is_file():
            found = _named(json.loads(file.read_text(encoding="utf-8")).get("chat_template"))
            if found:
                return found
    return {}


def _named(value) -> Templates:
    if isinstance(value, str):
        return {"default": value}
    if isinstance(value, list):
        return {item["name"]: item["template"] for item in value}
    return dict(value) if isinstance(value, dict) else {}


def _hub_templates(repo_id: str) -> Templates:
    try:
        import transformers  # noqa: PLC0415 - optional (the hf extra); HFTokenizer loads hub names with it
    except ImportError:
        return {}
    return _named(transformers.AutoTokenizer.from_pretrained(repo_id).chat_template)
