"""Errors the sweep driver reports to the user (exit code 2), and the ways a trial can end badly."""

from __future__ import annotations


class SweepConfigError(ValueError):
    """A sweep that cannot work as configured; the message names the file or option and the fix."""


class TrialFailed(Exception):
    """A trial ended without usable metrics (non-zero exit, no summary, missing metric, timeout).

    Optuna records the trial as FAILED and the sweep goes on with the next one.
    """


class SweepInterrupted(Exception):
    """The driver was asked to stop (Ctrl-C, SIGTERM); the running trial is killed and FAILED."""
