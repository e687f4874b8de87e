"""Sweep entry point: ``python -m lit_illada.sweep sweep=<name> [option=value ...] [-- train overrides]``.

    python -m lit_illada.sweep sweep=objective                       # sweeps/objective.yaml
    python -m lit_illada.sweep sweep=objective preset=tiny workers=2 # seconds per trial, 2 at once
    python -m lit_illada.sweep sweep=objective -- trainer=gpu        # every trial trains on a GPU

Options (before ``--``) are the keys of conf/sweep.yaml; everything after ``--`` is passed to
every trial's ``python -m lit_illada.train`` and is part of the study (another ``-- ckpt=``
needs another ``study=``). The search space, objectives, sampler and pruner live in the sweep
file. Re-running the same command resumes the study and runs only the missing trials;
starting it N times (a SLURM array) shares the trials out.

Hydra's --multirun is not used: each trial is its own subprocess (see lit_illada.sweeping).
"""

from __future__ import annotations

import signal
import sys

from lit_illada.sweeping.errors import SweepConfigError

USAGE = (
    __doc__.rsplit("\n\n", 1)[0]
    + "\n\nOptions and their defaults: conf/sweep.yaml. Sweep files: sweeps/*.yaml."
)


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """Driver options before ``--``, train overrides for every trial after it."""
    if "--" not in argv:
        return argv, []
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1 :]


def _sigterm_as_interrupt(signum, frame) -> None:
    # A scheduler (SLURM, Kubernetes) stops jobs with SIGTERM: stop like Ctrl-C, killing the
    # running trials, instead of dying and leaving them to run on as orphans.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(arg in ("-h", "--help") for arg in split_argv(argv)[0]):
        print(USAGE)
        return 0
    options_argv, trial_overrides = split_argv(argv)
    previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        from lit_illada.sweeping.driver import compose_options, run_sweep  # noqa: PLC0415 - keeps --help instant

        study = run_sweep(compose_options(options_argv), trial_overrides)
    except SweepConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "sweep stopped; the running trials were killed and marked FAILED. The same command resumes.",
            file=sys.stderr,
        )
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    from optuna.trial import TrialState  # noqa: PLC0415 - optuna is slow to import; --help stays instant

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        print(
            "error: no trial completed; see the note column above and the logs/ of the sweep folder",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
