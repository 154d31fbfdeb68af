"""How many tokens each denoising step commits: the semi-autoregressive block schedule.

LLaDA's sampler discretises t ∈ [0, 1] into ``steps_per_block`` equal intervals per block; with
its linear noise schedule (LLaDA Eq. 8) the expected number of tokens unmasked per interval is
constant, so a block's ``n`` masked tokens are spread as ``n // S`` per step and the first
``n % S`` steps commit one extra (the public ``get_num_transfer_tokens``). Example: n = 10, S = 4
→ [3, 3, 2, 2]. When S > n the trailing steps commit nothing; the engine skips those steps
without a forward pass.
"""

from __future__ import annotations

import torch

from dlrl.errors import ConfigError


def steps_per_block(gen_length: int, block_length: int, steps: int) -> int:
    """Validate the block layout and return ``steps // (gen_length // block_length)``.

    Raises :class:`ConfigError` naming ``gen_length``/``block_length``/``steps`` when the completion
    does not split into whole blocks or the steps do not split evenly over the blocks.
    """
    for name, value in (("gen_length", gen_length), ("block_length", block_length), ("steps", steps)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name} must be a positive int, got {value!r}")
    if gen_length % block_length:
        raise ConfigError(
            f"gen_length={gen_length} is not a multiple of block_length={block_length}; "
            f"pick block_length from the divisors of gen_length"
        )
    num_blocks = gen_length // block_length
    if steps % num_blocks:
        raise ConfigError(
            f"steps={steps} must be a multiple of the number of blocks "
            f"(gen_length/block_length = {num_blocks}) so every block gets the same number of steps"
        )
    return steps // num_blocks


def transfer_counts(masked_count: torch.Tensor, steps: int) -> torch.Tensor:
    """Per-row step schedule: ``masked_count`` [B] → counts [B, steps] (long, rows sum to the count).

    ``base = n // steps`` for every step and the first ``n % steps`` steps get one more.
    """
    n = masked_count.long().view(-1, 1)
    base, extra = n // steps, n % steps
    step_idx = torch.arange(steps, device=n.device).view(1, -1)
    return base + (step_idx < extra).long()
