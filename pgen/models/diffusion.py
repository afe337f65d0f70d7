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

from __future__ import annotations

import contextlib
import math
from typing import Literal

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from torch import nn

from ..checks import check_choice, check_float, check_int, check_int_tuple
from ..data.validate import check_data
from . import registry
from .nets import MLPDenoiser, UNetDenoiser

__all__ = [
    "Diffusion",
    "linear_betas",
    "cosine_betas",
    "SCHEDULES",
    "schedule_constants",
    "q_sample",
    "PREDICTIONS",
    "VARIANCES",
]

PREDICTIONS = ("eps", "x0", "v")
VARIANCES = ("posterior", "beta", "learned")


# --------------------------------------------------------------------------- schedules


def linear_betas(
    timesteps: int, beta_start: float | None = None, beta_end: float | None = None
) -> torch.Tensor:
    r"""Ho et al.'s linear schedule, :math:`\beta_1 = 10^{-4}` to :math:`\beta_T = 0.02` for
    T = 1000, scaled by 1000/T for other T (Nichol & Dhariwal 2021) so that
    :math:`\bar\alpha_T` stays near 0. Returns ``(T,)`` float64, entry ``t-1`` is
    :math:`\beta_t`."""
    timesteps = check_int("timesteps", timesteps, minimum=1)
    scale = 1000.0 / timesteps
    lo = 1e-4 * scale if beta_start is None else check_float("beta_start", beta_start, positive=True)
    hi = min(0.02 * scale, 0.999) if beta_end is None else check_float("beta_end", beta_end, positive=True)
    if not lo <= hi < 1:
        raise ValueError(f"need 0 < beta_start <= beta_end < 1; got {lo}, {hi}")
    return torch.linspace(lo, hi, timesteps, dtype=torch.float64)


def cosine_betas(timesteps: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    r"""Nichol & Dhariwal (2021): :math:`\bar\alpha_t = f(t)/f(0)`,
    :math:`f(t) = \cos^2\big(\frac{t/T + s}{1 + s}\frac\pi2\big)`, betas clipped at
    ``max_beta``. Returns ``(T,)`` float64."""
    timesteps = check_int("timesteps", timesteps, minimum=1)
    t = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=max_beta)


SCHEDULES = {"linear": linear_betas, "cosine": cosine_betas}


def schedule_constants(betas: torch.Tensor) -> dict[str, torch.Tensor]:
    r"""The constants of the notes, indexed by t = 0..T (entry 0 is t = 0, where
    :math:`\bar\alpha_0 = 1`): ``beta``, ``alpha``, ``alpha_bar``, and the posterior
    coefficients ``gamma``, ``delta``, ``sigma2`` of :math:`q(x_{t-1}\mid x_t, x_0)`
    (meaningful for t >= 2; at t = 1 the posterior is a point mass at :math:`x_0`)."""
    betas = torch.as_tensor(betas, dtype=torch.float64)
    if betas.dim() != 1 or not ((betas > 0) & (betas < 1)).all():
        raise ValueError("betas must be a 1-D tensor of values in (0, 1)")
    beta = torch.cat([torch.zeros(1, dtype=torch.float64), betas])
    alpha = 1 - beta
    alpha_bar = torch.cumprod(alpha, 0)
    prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])
    denom = (1 - alpha_bar).clamp(min=1e-300)
    gamma = alpha.sqrt() * (1 - prev) / denom
    delta = prev.sqrt() * beta / denom
    sigma2 = (1 - prev) * beta / denom
    gamma[0] = delta[0] = sigma2[0] = 0.0
    return {
        "beta": beta,
        "alpha": alpha,
        "alpha_bar": alpha_bar,
        "gamma": gamma,
        "delta": delta,
        "sigma2": sigma2,
    }


def q_sample(x0: torch.Tensor, alpha_bar_t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    r""":math:`x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon` (``alpha_bar_t``
    broadcast against ``x0``)."""
    return alpha_bar_t.sqrt() * x0 + (1 - alpha_bar_t).sqrt() * noise


# --------------------------------------------------------------------------- the model


def _data_args(x, y):
    dim = int(x[0].numel())
    side = int(round(math.sqrt(dim)))
    image_like = bool(x.numel()) and float(x.min()) >= 0.0 and float(x.max()) <= 1.0 and side * side == dim
    out = {"data_dim": dim}
    if image_like:
        out["image_shape"] = [side, side]
    else:  # real-valued data (2-D toys): used as is, not mapped from [0, 1]
        out["data_range"] = None
    return out


@registry.register("diffusion", data_args=_data_args)
class Diffusion(nn.Module):
    """A Gaussian diffusion model as a hierarchical VAE (module docstring).

    Args:
        data_dim: size of one flattened example.
        timesteps: T.
        schedule: ``"linear"`` or ``"cosine"``.
        prediction: what the denoiser predicts: ``"eps"`` (the noise), ``"x0"`` or ``"v"``
            (:math:`\\sqrt{\\bar\\alpha_t}\\epsilon - \\sqrt{1-\\bar\\alpha_t}x_0`; Salimans &
            Ho 2022).
        denoiser: ``"mlp"`` or ``"unet"`` (needs ``image_shape``).
        hidden: the MLP's hidden widths.
        channels: the U-Net's widths per resolution.
        image_shape: ``(rows, cols)`` of image data (read off square image data).
        data_range: the ``(low, high)`` of the data, mapped to [-1, 1]; images in [0, 1]
            by default; ``None`` for data used as is (2-D toys).
        num_classes: 0, or the number of labels for class-conditional denoising with
            classifier-free guidance (labels dropped with probability ``label_dropout``
            in training; Ho & Salimans 2022).
        label_dropout: that probability.
        estimator: ``"sampled"`` or ``"full"`` (module docstring).
        timestep_proposal: how the sampled estimator draws t: ``"uniform"`` or
            ``"weighted"`` (module docstring).
        loss: ``"elbo"`` or ``"simple"``.
        variance: the reverse steps' variance: ``"posterior"``
            :math:`\\tilde\\sigma_t^2` (right when :math:`x_0` given :math:`x_t` is nearly
            certain), ``"beta"`` :math:`\\beta_t` (right when the data is locally flat at
            the noise scale, as dequantized grey levels are at small t; Ho et al. 2020,
            section 3.2), or ``"learned"``: per pixel,
            :math:`\\log\\Sigma = v\\log\\beta_t + (1-v)\\log\\tilde\\sigma_t^2` with v a second
            output of the denoiser (Nichol & Dhariwal 2021); trained by the ELBO only.

    Example:
        >>> x, _ = pgen.data.load("digits")
        >>> m = pgen.models.Diffusion(64, timesteps=1000, image_shape=(8, 8))
        >>> pgen.fit(m.model, m.guide, x, epochs=50, objective="meanfield")
        >>> images = m.sample(64, sampler="ddim", steps=50, seed=0)
    """

    objective = "meanfield"  # closed-form KLs: the notes' decomposition
    data_binarize = "dequantize"  # run folders: a density on dequantized grey levels
    uses_labels = True  # the labels reach the model; only num_classes > 0 uses them

    def __init__(
        self,
        data_dim: int,
        timesteps: int = 1000,
        schedule: Literal["linear", "cosine"] = "linear",
        prediction: Literal["eps", "x0", "v"] = "eps",
        denoiser: Literal["mlp", "unet"] = "mlp",
        hidden: tuple[int, ...] = (256, 256, 256),
        channels: tuple[int, ...] = (16, 32, 32),
        image_shape: tuple[int, ...] | None = None,
        data_range: tuple[float, ...] | None = (0.0, 1.0),
        num_classes: int = 0,
        label_dropout: float = 0.1,
        estimator: Literal["sampled", "full"] = "sampled",
        timestep_proposal: Literal["uniform", "weighted"] = "uniform",
        loss: Literal["elbo", "simple"] = "elbo",
        variance: Literal["posterior", "beta", "learned"] = "posterior",
    ):
        super().__init__()
        self.data_dim = check_int("data_dim", data_dim, minimum=1)
        self.timesteps = check_int("timesteps", timesteps, minimum=2)
        schedule = check_choice("schedule", schedule, SCHEDULES)
        self.prediction = check_choice("prediction", prediction, PREDICTIONS)
        denoiser = check_choice("denoiser", denoiser, ("mlp", "unet"))
        self.estimator = check_choice("estimator", estimator, ("sampled", "full"))
        self.timestep_proposal = check_choice("timestep_proposal", timestep_proposal, ("uniform", "weighted"))
        self.loss = check_choice("loss", loss, ("elbo", "simple"))
        self.variance = check_choice("variance", variance, VARIANCES)
        if self.variance == "learned" and self.loss == "simple":
            raise ValueError(
                "variance='learned' needs loss='elbo': the simple loss has no term that trains "
                "the variance; use variance='posterior' or 'beta' with loss='simple'"
            )
        outputs = 2 if self.variance == "learned" else 1
        self.num_classes = check_int("num_classes", num_classes, minimum=0)
        self.label_dropout = check_float("label_dropout", label_dropout, nonnegative=True, below=1.0)
        if image_shape is not None:
            image_shape = check_int_tuple("image_shape", image_shape)
            if len(image_shape) != 2 or image_shape[0] * image_shape[1] != self.data_dim:
                raise ValueError(
                    f"image_shape {image_shape} must be (rows, cols) with rows*cols = {data_dim}"
                )
        if data_range is not None:
            if len(data_range) != 2 or not float(data_range[0]) < float(data_range[1]):
                raise ValueError(f"data_range must be (low, high) with low < high, or None; got {data_range}")
            data_range = (float(data_range[0]), float(data_range[1]))
        self.image_shape, self.data_range = image_shape, data_range
        if denoiser == "unet":
            if image_shape is None:
                raise ValueError("denoiser='unet' needs image_shape=(rows, cols)")
            self.denoiser = UNetDenoiser(image_shape, channels, num_classes=self.num_classes, outputs=outputs)
        else:
            self.denoiser = MLPDenoiser(self.data_dim, hidden, num_classes=self.num_classes, outputs=outputs)
        self.config = {
            "data_dim": self.data_dim,
            "timesteps": self.timesteps,
            "schedule": schedule,
            "prediction": self.prediction,
            "denoiser": denoiser,
            "hidden": list(check_int_tuple("hidden", hidden)),
            "channels": list(check_int_tuple("channels", channels)),
            "image_shape": None if image_shape is None else list(image_shape),
            "data_range": None if data_range is None else list(data_range),
            "num_classes": self.num_classes,
            "label_dropout": self.label_dropout,
            "estimator": self.estimator,
            "timestep_proposal": self.timestep_proposal,
            "loss": self.loss,
            "variance": self.variance,
        }
        dtype = torch.get_default_dtype()
        constants = schedule_constants(SCHEDULES[schedule](self.timesteps))
        for name, value in constants.items():
            self.register_buffer(name, value.to(dtype), persistent=False)
        # the proposal pi_t of t = 2..T (entries 0 and 1 are 0) and its cumulative sums
        weight = constants["beta"][2:] / (constants["alpha"][2:] * (1 - constants["alpha_bar"][1:-1]))
        if self.timestep_proposal == "uniform":
            weight = torch.ones_like(weight)
        prob = 0.5 * weight / weight.sum() + 0.5 / (self.timesteps - 1)
        self.register_buffer("t_prob", torch.cat([prob.new_zeros(2), prob]).to(dtype), persistent=False)
        self.register_buffer("t_cdf", prob.cumsum(0).to(dtype), persistent=False)
        # x in data units = offset + x0 / scale; the density of x is scale^D times that of x0
        lo, hi = data_range if data_range is not None else (-1.0, 1.0)
        self._scale, self._offset = 2.0 / (hi - lo), (hi + lo) / 2.0

    # ---------------------------------------------------------------- pieces

    @property
    def event_shape(self) -> tuple[int, ...]:
        return (self.data_dim,)

    def validate_data(self, x: torch.Tensor, y=None, *, name: str = "x") -> None:
        check_data(x, name=name, event_shape=self.event_shape)
        if y is not None and self.num_classes:
            y = torch.as_tensor(y)
            if y.dtype.is_floating_point or y.min() < 0 or y.max() >= self.num_classes:
                raise ValueError(f"y must be integer labels in [0, {self.num_classes}); got {y.dtype} values")

    def to_model_space(self, x: torch.Tensor) -> torch.Tensor:
        """Data units -> :math:`x_0` in [-1, 1]."""
        return (x - self._offset) * self._scale

    def to_data_space(self, x0: torch.Tensor) -> torch.Tensor:
        return x0 / self._scale + self._offset

    def _at(self, name: str, t: torch.Tensor) -> torch.Tensor:
        """Constant ``name`` at timesteps ``t`` (``(N,)``), shaped ``(N, 1)``."""
        return getattr(self, name)[t].unsqueeze(-1)

    def _drops_labels(self, y) -> bool:
        return bool(self.num_classes) and y is not None and self.training and self.label_dropout > 0

    def _labels(self, y, n: int, u: torch.Tensor | None = None):
        """Labels with the null label for ``y=None`` and, in training, each label dropped
        with probability ``label_dropout`` (where ``u``, uniform draws, fall below it)."""
        if not self.num_classes:
            return None
        if y is None:
            return torch.full((n,), self.num_classes, dtype=torch.long, device=self.beta.device)
        y = torch.as_tensor(y, dtype=torch.long, device=self.beta.device)
        if self._drops_labels(y):
            u = torch.rand(y.shape, device=y.device) if u is None else u
            y = torch.where(u < self.label_dropout, torch.full_like(y, self.num_classes), y)
        return y

    def predict(self, xt: torch.Tensor, t: torch.Tensor, y=None, *, guidance: float = 0.0):
        r"""The denoiser's :math:`(\hat x_0, \hat\epsilon)` at :math:`(x_t, t)`, whatever it
        predicts. With ``guidance`` w > 0 (class-conditional models):
        :math:`\hat\epsilon = (1+w)\,\hat\epsilon(x_t, y) - w\,\hat\epsilon(x_t, \varnothing)`."""
        return self._predict(xt, t, y, guidance)[:2]

    def _predict(self, xt, t, y=None, guidance: float = 0.0):
        r""":math:`(\hat x_0, \hat\epsilon, v)`, v the variance output (``None`` unless learned);
        guidance mixes the mean outputs only (the variance is the conditional one)."""
        batch = xt.shape[:-1]
        t = t.expand(batch)
        out, v = self._net(xt, t, y), None
        if self.variance == "learned":
            out, v = out[..., : self.data_dim], out[..., self.data_dim :]
        if guidance and self.num_classes:
            null = self._net(xt, t, torch.full_like(t, self.num_classes))[..., : self.data_dim]
            out = (1 + guidance) * out - guidance * null
        x0_hat, eps_hat = self._from_output(xt, t, out)
        return x0_hat, eps_hat, v

    def _from_output(self, xt, t, out):
        ab = self._at("alpha_bar", t)
        a, s = ab.sqrt(), (1 - ab).sqrt()
        if self.prediction == "eps":
            return (xt - s * out) / a, out
        if self.prediction == "x0":
            return out, (xt - a * out) / s
        return a * xt - s * out, s * xt + a * out  # v

    def _net(self, xt, t, y):
        """The denoiser on any batch shape (it takes flat batches)."""
        batch = xt.shape[:-1]
        flat_x, flat_t = xt.reshape(-1, self.data_dim), t.reshape(-1)
        if self.num_classes:
            out = self.denoiser(flat_x, flat_t, None if y is None else y.expand(batch).reshape(-1))
        else:
            out = self.denoiser(flat_x, flat_t)
        return out.reshape(*batch, out.shape[-1])

    def _target(self, x0, eps, t):
        ab = self._at("alpha_bar", t)
        if self.prediction == "eps":
            return eps
        if self.prediction == "x0":
            return x0
        return ab.sqrt() * eps - (1 - ab).sqrt() * x0

    def _decoder(self, x1: torch.Tensor, y) -> dist.Distribution:
        """:math:`p_\\theta(x_0\\mid x_1)` in data units."""
        t1 = torch.ones(x1.shape[:-1], dtype=torch.long, device=x1.device)
        x0_hat, _ = self.predict(x1, t1, y)
        return dist.Normal(self.to_data_space(x0_hat), self.beta[1].sqrt() / self._scale).to_event(1)

    def _reverse_scale(self, t, v) -> torch.Tensor:
        r"""The standard deviation of :math:`p_\theta(x_{t-1}\mid x_t)` (t >= 2)."""
        if self.variance == "posterior":
            return self._at("sigma2", t).sqrt()
        if self.variance == "beta":
            return self._at("beta", t).sqrt()
        log_beta, log_post = self._at("beta", t).log(), self._at("sigma2", t).log()
        return (0.5 * (v * log_beta + (1 - v) * log_post)).exp()

    def _reverse_step(self, xt, t, y) -> dist.Distribution:
        x0_hat, _, v = self._predict(xt, t, y)
        loc = self._at("gamma", t) * xt + self._at("delta", t) * x0_hat
        return dist.Normal(loc, self._reverse_scale(t, v)).to_event(1)

    def _posterior(self, xt, x0, t) -> dist.Distribution:
        loc = self._at("gamma", t) * xt + self._at("delta", t) * x0
        return dist.Normal(loc, self._at("sigma2", t).sqrt()).to_event(1)

    def _marginal(self, x0, t) -> dist.Distribution:
        ab = self._at("alpha_bar", t)
        return dist.Normal(ab.sqrt() * x0, (1 - ab).sqrt()).to_event(1)

    @contextlib.contextmanager
    def _evaluating(self, seed: int | None):
        """Eval mode (no label dropout) and, with ``seed``, seeded draws that leave the
        global random state as it was; the previous mode is restored on exit."""
        was = self.training
        self.eval()
        try:
            with torch.random.fork_rng(devices=[], enabled=seed is not None):
                if seed is not None:
                    torch.manual_seed(check_int("seed", seed, minimum=0))
                yield
        finally:
            self.train(was)

    def _steps(self, n: int, device) -> list[torch.Tensor]:
        return [torch.full((n,), t, dtype=torch.long, device=device) for t in range(self.timesteps, 0, -1)]

    # ---------------------------------------------------------------- model and guide

    def model(self, x: torch.Tensor | None = None, *, y=None, n: int | None = None) -> torch.Tensor:
        """The reverse chain; with ``x`` given, the training pair of ``estimator``/``loss``."""
        pyro.module("denoiser", self.denoiser)
        if x is None:
            n = (len(y) if y is not None else 1) if n is None else check_int("n", n, minimum=1)
            if y is not None and len(y) != n:
                raise ValueError(f"n={n} but y has {len(y)} labels; give one or the other")
        else:
            n = x.shape[0]
        zero = self.beta.new_zeros(n, self.data_dim)
        with pyro.plate("data", n):
            if x is not None and self.estimator == "sampled":
                return self._sampled_terms(x, y, role="model")
            labels = self._labels(y, n)
            xt = pyro.sample(f"x{self.timesteps}", dist.Normal(zero, 1.0).to_event(1))
            for t in self._steps(n, zero.device)[:-1]:
                xt = pyro.sample(f"x{int(t[0]) - 1}", self._reverse_step(xt, t, labels))
            return pyro.sample("obs", self._decoder(xt, labels), obs=x)

    def guide(self, x: torch.Tensor | None = None, *, y=None, n: int | None = None):
        """The forward process, :math:`q(x_T\\mid x_0)\\prod_t q(x_{t-1}\\mid x_t, x_0)`."""
        if x is None:
            raise ValueError("the guide q(x_1:T | x_0) needs x; to generate, call model(n=...) or sample()")
        x0 = self.to_model_space(x)
        n = x.shape[0]
        with pyro.plate("data", n):
            if self.estimator == "sampled":
                return self._sampled_terms(x, y, role="guide")
            big_t = torch.full((n,), self.timesteps, dtype=torch.long, device=x.device)
            xt = pyro.sample(f"x{self.timesteps}", self._marginal(x0, big_t))
            for t in self._steps(n, x.device)[:-1]:
                xt = pyro.sample(f"x{int(t[0]) - 1}", self._posterior(xt, x0, t))
            return xt

    def _sampled_terms(self, x, y, role: str):
        """One timestep per example: the shared sites of the sampled estimator and of the
        simple loss (the auxiliary ones have the same law in model and guide)."""
        x0 = self.to_model_space(x)
        n, dev = x.shape[0], x.device
        u = pyro.sample("t_u", dist.Uniform(x0.new_zeros(n), 1.0))  # the timestep, same law in both
        if self.loss == "simple":  # t ~ U{1..T}
            t = 1 + (u * self.timesteps).floor().long().clamp(max=self.timesteps - 1)
            labels = self._aux_labels(y, n, x0)
            xt = pyro.sample("xt", self._marginal(x0, t))
            if role == "model":
                ab = self._at("alpha_bar", t)
                eps = (xt - ab.sqrt() * x0) / (1 - ab).sqrt()
                out = self._net(xt, t, labels)[..., : self.data_dim]
                pyro.factor("simple_loss", -((out - self._target(x0, eps, t)) ** 2).sum(-1))
            return xt
        # t ~ pi on 2..T (uniform or weighted) by the inverse CDF, its term weighted 1 / pi_t
        t = 2 + torch.searchsorted(self.t_cdf, u.unsqueeze(-1)).squeeze(-1).clamp(max=self.timesteps - 2)
        weight = 1.0 / self.t_prob[t]
        labels = self._aux_labels(y, n, x0)
        big_t = torch.full((n,), self.timesteps, dtype=torch.long, device=dev)
        one = torch.ones(n, dtype=torch.long, device=dev)
        zero = x0.new_zeros(n, self.data_dim)
        # reconstruction: x_1 ~ q(x_1 | x_0) in both, then log p(x_0 | x_1)
        x1 = pyro.sample("x1", self._marginal(x0, one))
        # one denoising-matching term, weighted 1 / P(t)
        xt = pyro.sample("xt", self._marginal(x0, t))
        with poutine.scale(scale=weight):
            step = self._reverse_step(xt, t, labels) if role == "model" else self._posterior(xt, x0, t)
            pyro.sample("xs", step)
        # prior matching: KL(q(x_T | x_0) || N(0, I)); no parameters. The values of xs and xT
        # are unused under closed-form KLs, so torch.jit.trace drops their draws; drawn last,
        # that leaves the earlier draws (and so jit=True's check against eager) unchanged.
        pyro.sample(
            "xT", dist.Normal(zero, 1.0).to_event(1) if role == "model" else self._marginal(x0, big_t)
        )
        if role == "model":
            return pyro.sample("obs", self._decoder(x1, labels), obs=x)
        return xt

    def _aux_labels(self, y, n, x0):
        """Label dropout from an auxiliary uniform site drawn in model and guide alike (so
        that every draw of the pair precedes the unused ones; see ``xT`` above)."""
        if not self._drops_labels(y):
            return self._labels(y, n)
        u = pyro.sample("label_u", dist.Uniform(x0.new_zeros(n), 1.0))
        return self._labels(y, n, u)

    # ---------------------------------------------------------------- the bound, term by term

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

    # ---------------------------------------------------------------- sampling

    def _ddim_times(self, steps: int) -> list[int]:
        steps = check_int("steps", steps, minimum=1)
        if steps > self.timesteps:
            raise ValueError(f"steps must be at most timesteps={self.timesteps}; got {steps}")
        grid = torch.linspace(self.timesteps, 1, steps).round().long().tolist()
        return sorted(set(grid), reverse=True)

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
        times = list(range(self.timesteps, 0, -1)) if sampler == "ddpm" else self._ddim_times(steps or 50)
        if sampler == "ddpm" and steps not in (None, self.timesteps):
            raise ValueError(f"ddpm runs all {self.timesteps} steps; use sampler='ddim' for steps={steps}")
        labels = None
        if self.num_classes:
            labels = self._labels(None, n) if y is None else torch.as_tensor(y, dtype=torch.long)
            if len(labels) != n:
                raise ValueError(f"y has {len(labels)} labels for n={n}")
        elif y is not None or guidance:
            raise ValueError("y and guidance need a class-conditional model (num_classes > 0)")
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
                    x = torch.where(keep, self._marginal(k0, t).sample(), x)
                x0_hat, eps_hat, v = self._predict(x, t, labels, guidance=guidance)
                if clip and self.data_range is not None:
                    x0_hat = x0_hat.clamp(-1, 1)
                    ab = self._at("alpha_bar", t)
                    eps_hat = (x - ab.sqrt() * x0_hat) / (1 - ab).sqrt()
                if t_value == 1:
                    x = x0_hat
                elif sampler == "ddpm":
                    mean = self._at("gamma", t) * x + self._at("delta", t) * x0_hat
                    x = mean + self._reverse_scale(t, v) * torch.randn_like(x)
                else:
                    t_prev = times[i + 1] if i + 1 < len(times) else 0
                    ab, ab_prev = self.alpha_bar[t_value], self.alpha_bar[t_prev]
                    sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).sqrt()
                    x = (
                        ab_prev.sqrt() * x0_hat
                        + (1 - ab_prev - sigma**2).clamp(min=0).sqrt() * eps_hat
                        + sigma * torch.randn_like(x)
                    )
                path.append(x)
            if keep is not None:
                x = torch.where(keep, k0, x)
        out = self.to_data_space(x)
        return (out, path) if return_path else out
