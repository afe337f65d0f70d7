r"""Score matching: the explicit objective and its integration-by-parts form.

For data :math:`x \sim p` and a model score :math:`s_\theta(x) \approx \nabla_x \log p(x)`,
the explicit objective needs the unknown data score:

.. math::
    J_{\mathrm{ESM}}(\theta) = \tfrac12\,\mathbb E_p \|s_\theta(x) - \nabla_x \log p(x)\|^2.

Expanding the square and integrating the cross term by parts (Hyvärinen 2005, with
:math:`p` vanishing at infinity),
:math:`\mathbb E_p[s_\theta^\top \nabla \log p] = -\mathbb E_p[\operatorname{tr}\nabla_x s_\theta]`,
so

.. math::
    J_{\mathrm{ESM}}(\theta) = \underbrace{\mathbb E_p\big[\tfrac12 \|s_\theta(x)\|^2
    + \operatorname{tr} \nabla_x s_\theta(x)\big]}_{J_{\mathrm{ISM}}(\theta)}
    + \underbrace{\tfrac12\,\mathbb E_p \|\nabla_x \log p(x)\|^2}_{C,\ \text{free of}\ \theta}.

:func:`score_matching_objectives` computes both per sample (the Jacobian trace exactly,
by automatic differentiation), so their difference can be checked to be the same
constant for every :math:`\theta`; for a Gaussian :math:`p = \mathcal N(\mu, \Sigma)`,
:math:`C = \tfrac12 \operatorname{tr} \Sigma^{-1}`.

References:
    Hyvärinen (2005), Estimation of Non-Normalized Statistical Models by Score Matching, JMLR.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.validate import check_data
from ..models.score import score_and_trace

__all__ = ["ScoreObjectives", "score_matching_objectives", "jacobian_trace"]


def jacobian_trace(score_fn, x: torch.Tensor) -> torch.Tensor:
    """:math:`\\operatorname{tr} \\nabla_x s(x)` for each row of ``x`` ``(n, d)``, exactly:
    one backward pass per dimension."""
    return score_and_trace(score_fn, x, create_graph=False)[1].detach()


@dataclass(frozen=True)
class ScoreObjectives:
    """Per-sample terms (tensors ``(n,)``) and their means.

    Attributes:
        explicit: :math:`\\tfrac12\\|s_\\theta - \\nabla \\log p\\|^2`.
        implicit: :math:`\\tfrac12\\|s_\\theta\\|^2 + \\operatorname{tr}\\nabla s_\\theta`.
        constant: :math:`\\tfrac12\\|\\nabla \\log p\\|^2`.
    """

    explicit: torch.Tensor
    implicit: torch.Tensor
    constant: torch.Tensor

    @property
    def difference(self) -> float:
        """Mean of explicit minus implicit: an estimate of :math:`C`."""
        return float((self.explicit - self.implicit).mean())

    @property
    def difference_se(self) -> float:
        d = self.explicit - self.implicit
        return float(d.std() / d.numel() ** 0.5)


@torch.no_grad()
def score_matching_objectives(score_fn, x: torch.Tensor, true_score) -> ScoreObjectives:
    """Both score-matching objectives of ``score_fn`` on samples ``x`` of a target with
    known score ``true_score`` (a function ``(n, d) -> (n, d)``)."""
    check_data(x, name="x")  # finite, non-empty; x keeps its dtype
    x = torch.as_tensor(x)
    if x.dim() != 2:
        raise ValueError(f"x must be (n, d) samples, got shape {tuple(x.shape)}")
    s = score_fn(x)
    t = true_score(x)
    trace = jacobian_trace(score_fn, x)
    return ScoreObjectives(
        explicit=0.5 * ((s - t) ** 2).sum(-1),
        implicit=0.5 * (s**2).sum(-1) + trace,
        constant=0.5 * (t**2).sum(-1),
    )
