"""Training with Lightning: the ``DiffusionLM`` LightningModule, callbacks (checkpoints, RNG
states, preemption), FSDP2 ``parallelize``, atomic checkpoint IO, loggers, lr schedules and
the steps of a training run that the ``train`` command composes.

May import the core, diffusion, sampling, data, config, checkpoints and planning; never a command."""
