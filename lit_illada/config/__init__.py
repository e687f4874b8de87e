"""From a composed Hydra config to live components: building them, checking values at start-up,
config safety, one-line override errors, resolvers and where ``conf/`` lives.

May import the core, diffusion, sampling and data; never training, checkpoints or a command."""
