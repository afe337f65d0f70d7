"""What pgen reads from a Pyro trace's sample sites, in one place."""

from __future__ import annotations

import torch
from pyro.distributions.util import scale_and_mask

__all__ = ["observed_log_prob"]


def observed_log_prob(site) -> torch.Tensor:
    """The pointwise log-likelihood of an observed site: ``log p(value)`` where the
    observation counts and 0 where a ``poutine.mask`` (or ``obs_mask``) leaves it out, as
    Pyro's own ELBOs count it. Not scaled: a plate's subsampling scale is not part of an
    observation's likelihood."""
    return scale_and_mask(site["fn"].log_prob(site["value"]), 1.0, site["mask"])
