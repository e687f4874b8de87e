"""Running a trained model on inputs: prompt completion, the embedded and user tasks, the
lm-eval adapter and the export of tasks for lm-eval.

May import the core, sampling, scoring, data, config and checkpoints; never training or a command."""
