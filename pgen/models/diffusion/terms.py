"""The diffusion model's bound, term by term (:meth:`DiffusionTerms.elbo_terms`)."""

from __future__ import annotations

import pyro.distributions as dist
import torch

from ...checks import check_int
from ...data.validate import check_data

__all__ = ["DiffusionTerms"]


class DiffusionTerms:
    """Mixin of :class:`~pgen.models.Diffusion`: every term of its ELBO."""

    @torch.no_grad()
    def elbo_terms(self, x: torch.Tensor, y=None, *, num_samples: int = 1, seed: int | None = 0) -> dict:
        r"""Every term of the ELBO of each example, each from its own draws of
        :math:`x_t \sim q(x_t\mid x_0)` (``num_samples`` per term), in nats:

        ``reconstruction`` :math:`\mathbb E_q\log p_\theta(x_0\mid x_1)` ``(N,)``,
        ``prior`` :math:`\mathrm{KL}(q(x_T\mid x_0)\|p(x_T))` ``(N,)``, ``denoising``
        ``(T-1, N)`` (row ``t-2`` is the expected KL at t), and ``elbo``
        = reconstruction - prior - the sum of denoising.
        """
        x = check_data(x, name="x", event_shape=self.event_shape).to(self.beta.dtype)
        num_samples = check_int("num_samples", num_samples, minimum=1)
        with self._evaluating(seed):
            x0 = self.to_model_space(x)
            n = len(x)
            labels = self._labels(y, n)
            one = torch.ones(n, dtype=torch.long)
            big_t = torch.full((n,), self.timesteps, dtype=torch.long)
            prior = torch.distributions.kl_divergence(
                self._marginal(x0, big_t), dist.Normal(torch.zeros_like(x0), 1.0).to_event(1)
            )
            recon = torch.zeros(n, dtype=x0.dtype)
            for _ in range(num_samples):
                x1 = self._marginal(x0, one).sample()
                recon += self._decoder(x1, labels).log_prob(x) / num_samples
            rows = []
            for t_value in range(2, self.timesteps + 1):
                t = torch.full((n,), t_value, dtype=torch.long)
                total = torch.zeros(n, dtype=x0.dtype)
                for _ in range(num_samples):
                    xt = self._marginal(x0, t).sample()
                    total += torch.distributions.kl_divergence(
                        self._posterior(xt, x0, t), self._reverse_step(xt, t, labels)
                    )
                rows.append(total / num_samples)
            denoising = torch.stack(rows)
        return {
            "reconstruction": recon,
            "prior": prior,
            "denoising": denoising,
            "elbo": recon - prior - denoising.sum(0),
        }
