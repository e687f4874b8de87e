"""Hydra's composition errors, as one line that names the override and the fix.

Hydra answers a misspelled key with "To append to your config use +key=value", which adds a
key that nothing reads, and an unknown option with its whole config search path. Here a bad
override exits 2 with the nearest real key or option, like every other bad input.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Callable

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig

from lit_illada.config.paths import CONF_DIR

# Keys that moved: a command written for the old name is told the new one.
RENAMED_KEYS = {"parallel.compile": "model.compile"}


def run_cli(hydra_main: Callable[[], None], config_name: str) -> None:
    """Call a ``@hydra.main`` function; a bad override prints one line and exits 2."""

    previous = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises instead of printing and exiting 1
    try:
        hydra_main()
    except (ConfigCompositionException, OverrideParseException) as err:
        print(f"error: {explain_override_error(err, config_name, sys.argv[1:])}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        if previous is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = previous


def explain_override_error(err: Exception, config_name: str, overrides: list[str]) -> str:
    """One line for a Hydra composition error: the override, what is wrong, the fix."""

    if isinstance(err, OverrideParseException):
        return (
            f"{err.override}: cannot parse it ({err.message.splitlines()[0]}); quote values with "
            "special characters, e.g. 'prompt=\"a, b\"'"
        )
    if isinstance(err, MissingConfigException) and err.missing_cfg_file:
        group, _, value = str(err.missing_cfg_file).rpartition("/")
        # Hydra lists the options for a single choice, not for an item of a list group (tasks=[...]).
        options = [o for o in err.options or sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
                   if not o.startswith("_")]  # _base.yaml holds shared knobs, not an option
        if options:
            hint = _did_you_mean(value, options)
            return f"{group}={value}: no such option{hint}; choose one of {', '.join(options)}"
    message = str(err)
    if message.startswith("Could not override '"):
        key = message.split("'")[1]
        override = next((o for o in overrides if o.split("=", 1)[0] == key), f"{key}=...")
        if key in RENAMED_KEYS:
            new = f"{RENAMED_KEYS[key]}={override.split('=', 1)[1]}"
            return f"{key}: renamed to {RENAMED_KEYS[key]} (the same for every trainer); write {new}"
        return (
            f"{key}: no such key{_nearest_key(key, config_name, overrides)}; to add a new key on "
            f"purpose, write +{override}"
        )
    return message.split("\n", 1)[0]


def _did_you_mean(wanted: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(wanted, choices, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _nearest_key(key: str, config_name: str, overrides: list[str]) -> str:
    """` (did you mean a.b?)` from the keys (and config groups) that do exist at that level."""

    # Group choices (sampler=threshold) decide which keys exist; the failing override is left out.
    others = [
        o for o in overrides if "=" in o and not o.startswith(("+", "~", "-")) and o.split("=", 1)[0] != key
    ]
    for attempt in (others, [o for o in others if "." not in o.split("=", 1)[0]], []):
        try:
            if GlobalHydra.instance().is_initialized():  # inside hydra.main or a caller's compose context
                node = compose(config_name=config_name, overrides=attempt)
            else:
                with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
                    node = compose(config_name=config_name, overrides=attempt)
            break
        except Exception:  # noqa: BLE001 - another override is bad too; try with fewer
            continue
    else:
        return ""
    groups = {p.name for p in CONF_DIR.iterdir() if p.is_dir()}
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(node, DictConfig):
            return ""
        if part not in node:
            choices = [str(k) for k in node] + (sorted(groups) if depth == 0 else [])
            close = difflib.get_close_matches(part, choices, n=1)
            return (
                f" (did you mean {'.'.join([*parts[:depth], close[0], *parts[depth + 1 :]])}?)"
                if close
                else ""
            )
        node = node[part]
    return ""
