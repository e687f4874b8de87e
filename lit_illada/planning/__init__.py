"""Will a run fit, and how long will it take: parameter and memory counts, FLOPs per token and
the plan that ``train`` checks before allocating anything.

May import the core and config; never Lightning modules, training or a command."""
