"""``model.compile=true``: torch.compile each Transformer block, under every trainer.

Each block is compiled in place (``nn.Module.compile``) rather than wrapped in an
``OptimizedModule``: parameter names, and so checkpoint keys, stay as they are, and a checkpoint
saved from a compiled run loads into a plain Transformer. Per block, not the whole model: the
blocks share one graph, the LM head's ``logits_at`` indexing (data-dependent shape) stays
eager, and FSDP2 shards at block boundaries (torchtitan's layout).
"""

from __future__ import annotations

from lit_illada.core.model import Transformer


def compile_blocks(model: Transformer) -> None:
    """Compile every entry of ``model.blocks`` in place (a block, or its checkpoint wrapper).

    Lazy: nothing compiles until the first forward. Training and validation run compiled;
    ``DiffusionLM.generate`` runs the same blocks eager (``force_eager``): a sampler's shapes
    change every call and its KV-cache hooks (``prefill``, ``forward_window``) would recompile
    each block per layer and window, past torch's recompile limit.
    """
    for block in model.blocks:
        block.compile()

