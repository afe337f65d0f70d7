r"""Diffusion models written as hierarchical VAEs (Sohl-Dickstein et al. 2015; Ho, Jain &
Abbeel 2020, "Denoising Diffusion Probabilistic Models"; the notes).

A fixed forward process adds Gaussian noise,
:math:`q(x_t \mid x_{t-1}) = \mathcal N(\sqrt{1-\beta_t}\,x_{t-1}, \beta_t I)`, so that
:math:`q(x_t \mid x_0) = \mathcal N(\sqrt{\bar\alpha_t}\,x_0, (1-\bar\alpha_t) I)` with
:math:`\bar\alpha_t = \prod_{\tau \le t}(1-\beta_\tau)`, and its posterior is

.. math::
    q(x_{t-1} \mid x_t, x_0) = \mathcal N(\gamma_t x_t + \delta_t x_0, \sigma_t^2 I),\quad
    \gamma_t = \frac{\sqrt{\alpha_t}(1-\bar\alpha_{t-1})}{1-\bar\alpha_t},\
    \delta_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t},\
    \sigma_t^2 = \frac{(1-\bar\alpha_{t-1})\,\beta_t}{1-\bar\alpha_t}.

The learned reverse process uses the same form with a predicted :math:`\hat x_0`:
:math:`p_\theta(x_{t-1} \mid x_t) = \mathcal N(\gamma_t x_t + \delta_t \hat x_\theta(x_t, t),
\sigma_t^2 I)`, :math:`p(x_T) = \mathcal N(0, I)` and the decoder
:math:`p_\theta(x_0 \mid x_1) = \mathcal N(\hat x_\theta(x_1, 1), \beta_1 I)`.

:class:`Diffusion` is a Pyro model/guide pair. ``model`` is the reverse chain
:math:`p(x_T)\prod_t p_\theta(x_{t-1}\mid x_t)\,p_\theta(x_0 \mid x_1)`; ``guide`` is the
forward process in its posterior factorization :math:`q(x_T\mid x_0)\prod_t q(x_{t-1}\mid
x_t, x_0)`. With closed-form KLs (``objective="meanfield"``, the class default) the bound
:func:`pgen.fit` computes for the pair is the notes' decomposition

.. math::
    \mathbb E_{q}\log p_\theta(x_0\mid x_1) - \mathrm{KL}(q(x_T\mid x_0)\,\|\,p(x_T))
    - \sum_{t=2}^{T}\mathbb E_{q}\,\mathrm{KL}(q(x_{t-1}\mid x_t,x_0)\,\|\,p_\theta(x_{t-1}\mid x_t)).

Three estimators of it (``estimator=``):

* ``"full"``: every step is a Pyro site (exact structure; for small T).
* ``"sampled"`` (default): one timestep :math:`t \sim \mathcal U\{2..T\}` per example, the
  term at t weighted by :math:`T-1` (each term needs only :math:`x_t \sim q(x_t\mid x_0)`),
  so a step costs two denoiser passes whatever T is. The timestep is an auxiliary site
  with the same uniform law in model and guide, and :math:`x_t`, :math:`x_1` are
  auxiliary sites with the law :math:`q(\cdot\mid x_0)` in both: they add nothing to the
  bound, whose estimator is therefore unbiased for the same ELBO. With
  ``timestep_proposal="weighted"`` t is drawn from :math:`\pi_t` instead and its term is
  weighted :math:`1/\pi_t` (importance sampling; still unbiased). Most of the bound of
  image data sits at small t, which a uniform t rarely visits; :math:`\pi_t` is half
  uniform and half proportional to
  :math:`\beta_t/(\alpha_t(1-\bar\alpha_{t-1}))`, the KL at t of a unit error in the
  predicted noise (cf. Nichol & Dhariwal 2021, who adapt :math:`\pi_t` during training).
* ``loss="simple"`` instead trains on Ho et al.'s unweighted loss
  :math:`\mathbb E_{t \sim \mathcal U\{1..T\}}\|\text{target} - f_\theta(x_t, t)\|^2`
  (target: the noise, :math:`x_0` or :math:`v` as predicted), a ``pyro.factor``; the
  "ELBO" the engine then reports is minus that loss, not a bound.

Data: the model works on :math:`x_0 \in [-1, 1]`, the affine image of ``data_range``; all
log-densities are in the data's own units (the Jacobian is included), so the ELBO of
images in [0, 1] is a density bound there. For bits/dim of discrete images see
:meth:`Diffusion.nll_bound`.
"""

from .model import PREDICTIONS, VARIANCES, Diffusion
from .schedules import SCHEDULES, cosine_betas, linear_betas, q_sample, schedule_constants, timestep_proposal
from .steps import (
    clip_prediction,
    ddim_step,
    ddim_times,
    ddpm_step,
    from_prediction,
    keep_known,
    reverse_scale,
)

__all__ = [
    "Diffusion",
    "linear_betas",
    "cosine_betas",
    "SCHEDULES",
    "schedule_constants",
    "q_sample",
    "timestep_proposal",
    "PREDICTIONS",
    "VARIANCES",
    "from_prediction",
    "clip_prediction",
    "reverse_scale",
    "ddpm_step",
    "ddim_step",
    "ddim_times",
    "keep_known",
]
