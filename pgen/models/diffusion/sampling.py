"""Sampling from a diffusion model: a short loop over the reverse steps of
:mod:`pgen.models.diffusion.steps` (:meth:`DiffusionSampling.sample`)."""

from __future__ import annotations

from typing import Literal

import torch

from ...checks import check_choice, check_float, check_int
from .schedules import q_sample
from .steps import clip_prediction, ddim_step, ddim_times, ddpm_step, keep_known

__all__ = ["DiffusionSampling"]


class DiffusionSampling:
    """Mixin of :class:`~pgen.models.Diffusion`: DDPM and DDIM sampling, guidance and
    in-painting, and the forward process's states for figures."""

    @torch.no_grad()
    def sample(
        self,
        n: int = 64,
        *,
        sampler: Literal["ddpm", "ddim"] = "ddpm",
        steps: int | None = None,
        eta: float = 0.0,
        y=None,
        guidance: float = 0.0,
        clip: bool = True,
        x_t: torch.Tensor | None = None,
        known: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        seed: int | None = None,
        return_path: bool = False,
    ):
        r"""Generate ``n`` examples in data units.

        Args:
            sampler: ``"ddpm"`` (ancestral sampling through all T steps of the model) or
                ``"ddim"`` (Song, Meng & Ermon 2021) on ``steps`` timesteps evenly spaced
                from T to 1, with noise ``eta`` (0: deterministic).
            y: labels ``(n,)`` for a class-conditional model (``None``: unconditional).
            guidance: classifier-free guidance weight w (0: none).
            clip: clip each :math:`\hat x_0` to [-1, 1], the image of ``data_range``
                (without a ``data_range`` nothing is clipped).
            x_t: the starting noise ``(n, D)`` (default: drawn).
            known, mask: in-painting: where ``mask`` is true, each step's state is
                replaced by ``known`` (data units) noised to that step (Lugmayr et al.
                2022, without resampling).
            seed: seeds the draws (the global random state is left as it was).
            return_path: also return the states :math:`x_T, \dots` (model space).

        Returns:
            ``(n, D)`` samples (and the list of states with ``return_path``).
        """
        n = check_int("n", n, minimum=1)
        sampler = check_choice("sampler", sampler, ("ddpm", "ddim"))
        eta = check_float("eta", eta, nonnegative=True)
        if sampler == "ddpm" and steps not in (None, self.timesteps):
            raise ValueError(f"ddpm runs all {self.timesteps} steps; use sampler='ddim' for steps={steps}")
        times = (
            list(range(self.timesteps, 0, -1))
            if sampler == "ddpm"
            else ddim_times(self.timesteps, steps or 50)
        )
        labels = self._sample_labels(n, y, guidance)
        if (known is None) != (mask is None):
            raise ValueError("in-painting needs both known and mask")
        with self._evaluating(seed):
            x = torch.randn(n, self.data_dim, dtype=self.beta.dtype) if x_t is None else x_t.clone()
            k0 = None if known is None else self.to_model_space(known.to(x.dtype)).expand_as(x)
            keep = None if mask is None else mask.to(torch.bool).expand_as(x)
            path = [x]
            for i, t_value in enumerate(times):
                t = torch.full((n,), t_value, dtype=torch.long)
                if keep is not None:  # known pixels at noise level t
                    x = keep_known(x, self._marginal(k0, t).sample(), keep)
                x0_hat, eps_hat, v = self._predict(x, t, labels, guidance=guidance)
                if clip and self.data_range is not None:
                    x0_hat, eps_hat = clip_prediction(x, x0_hat, self._at("alpha_bar", t))
                if t_value == 1:
                    x = x0_hat
                elif sampler == "ddpm":
                    scale = self._reverse_scale(t, v)
                    x = ddpm_step(
                        x, x0_hat, self._at("gamma", t), self._at("delta", t), scale, torch.randn_like(x)
                    )
                else:
                    prev = self.alpha_bar[times[i + 1] if i + 1 < len(times) else 0]
                    x = ddim_step(x0_hat, eps_hat, self.alpha_bar[t_value], prev, eta, torch.randn_like(x))
                path.append(x)
            if keep is not None:
                x = keep_known(x, k0, keep)
        out = self.to_data_space(x)
        return (out, path) if return_path else out

    def _sample_labels(self, n: int, y, guidance: float):
        if not self.num_classes:
            if y is not None or guidance:
                raise ValueError("y and guidance need a class-conditional model (num_classes > 0)")
            return None
        labels = self._labels(None, n) if y is None else torch.as_tensor(y, dtype=torch.long)
        if len(labels) != n:
            raise ValueError(f"y has {len(labels)} labels for n={n}")
        return labels

    @torch.no_grad()
    def forward_states(self, x: torch.Tensor, timesteps, *, seed: int = 0) -> list[torch.Tensor]:
        """``x`` (data units) noised by the forward process to each of ``timesteps``
        (0: ``x`` itself), with one noise draw shared by all of them, in data units."""
        x0 = self.to_model_space(x)
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed), dtype=x0.dtype)
        states = [x0 if t == 0 else q_sample(x0, self.alpha_bar[t], noise) for t in timesteps]
        return [self.to_data_space(s) for s in states]
