"""The :class:`Diffusion` model/guide pair (see :mod:`pgen.models.diffusion`)."""

from __future__ import annotations

import contextlib
import math
from typing import Literal

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from torch import nn

from ...checks import check_choice, check_float, check_int, check_int_tuple
from ...data.validate import check_data
from .. import registry
from ..nets import MLPDenoiser, UNetDenoiser
from ..protocols import BoundedModel, configured
from .sampling import DiffusionSampling
from .schedules import SCHEDULES, schedule_constants, timestep_proposal
from .steps import (
    from_prediction,
    reverse_scale,
)
from .terms import DiffusionTerms

__all__ = ["Diffusion", "PREDICTIONS", "VARIANCES"]

PREDICTIONS = ("eps", "x0", "v")
VARIANCES = ("posterior", "beta", "learned")


def _check_space(data_dim: int, image_shape, data_range):
    if image_shape is not None:
        image_shape = check_int_tuple("image_shape", image_shape)
        if len(image_shape) not in (2, 3) or math.prod(image_shape) != data_dim:
            raise ValueError(
                f"image_shape {image_shape} must be (rows, cols) or (channels, rows, cols) holding "
                f"data_dim = {data_dim} values"
            )
    if data_range is not None:
        if len(data_range) != 2 or not float(data_range[0]) < float(data_range[1]):
            raise ValueError(f"data_range must be (low, high) with low < high, or None; got {data_range}")
        data_range = (float(data_range[0]), float(data_range[1]))
    return image_shape, data_range


def _data_args(x, y):
    dim = int(x[0].numel())
    in_unit = bool(x.numel()) and float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    grey, colour = math.isqrt(dim), math.isqrt(dim // 3)
    out = {"data_dim": dim}
    if in_unit and grey * grey == dim:
        out["image_shape"] = [grey, grey]
    elif in_unit and dim % 3 == 0 and colour * colour * 3 == dim:  # RGB planes (CIFAR-10)
        out["image_shape"] = [3, colour, colour]
    else:  # real-valued data (2-D toys): used as is, not mapped from [0, 1]
        out["data_range"] = None
    return out


@registry.register(
    "diffusion", family="diffusion", reads=("data_dim", "image_shape", "data_range"), data_args=_data_args
)
class Diffusion(DiffusionTerms, DiffusionSampling, BoundedModel, nn.Module):
    """A Gaussian diffusion model written as a hierarchical VAE (see pgen.models.diffusion).

    Args:
        data_dim: size of one flattened example.
        timesteps: T, the number of noising steps.
        schedule: ``"linear"`` or ``"cosine"``.
        prediction: what the denoiser predicts: ``"eps"`` (the noise), ``"x0"`` or ``"v"``
            (:math:`\\sqrt{\\bar\\alpha_t}\\epsilon - \\sqrt{1-\\bar\\alpha_t}x_0`; Salimans &
            Ho 2022).
        denoiser: ``"mlp"`` or ``"unet"`` (needs ``image_shape``).
        hidden: the MLP's hidden widths.
        channels: the U-Net's widths per resolution.
        image_shape: ``(rows, cols)`` of grey images or ``(3, rows, cols)`` of colour ones
            stored as channel planes (read off square image data).
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
        mixed_precision: run the denoiser under bfloat16 autocast (its convolutions and
            matrix products in bf16, on a GPU or a CPU) and return its output in the
            model's float dtype, so every term of the ELBO is computed and summed in
            float32; the parameters, gradients and optimizer stay float32.

    Example:
        >>> x, _ = pgen.data.load("digits")
        >>> m = pgen.models.Diffusion(64, timesteps=1000, image_shape=(8, 8))
        >>> pgen.fit(m.model, m.guide, x, epochs=50, objective="meanfield")
        >>> images = m.sample(64, sampler="ddim", steps=50, seed=0)
    """

    @configured
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
        mixed_precision: bool = False,
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
        if not isinstance(mixed_precision, bool):
            raise TypeError(f"mixed_precision must be True or False, got {mixed_precision!r}")
        self.mixed_precision = mixed_precision
        self.num_classes = check_int("num_classes", num_classes, minimum=0)
        self.label_dropout = check_float("label_dropout", label_dropout, nonnegative=True, below=1.0)
        self.image_shape, self.data_range = _check_space(self.data_dim, image_shape, data_range)
        self.denoiser = self._build_denoiser(denoiser, hidden, channels)
        self._register_constants(schedule)

    def _build_denoiser(self, kind: str, hidden, channels) -> nn.Module:
        outputs = 2 if self.variance == "learned" else 1
        hidden, channels = check_int_tuple("hidden", hidden), check_int_tuple("channels", channels)
        if kind == "unet":
            if self.image_shape is None:
                raise ValueError("denoiser='unet' needs image_shape=(rows, cols)")
            return UNetDenoiser(self.image_shape, channels, num_classes=self.num_classes, outputs=outputs)
        return MLPDenoiser(self.data_dim, hidden, num_classes=self.num_classes, outputs=outputs)

    def _register_constants(self, schedule: str) -> None:
        dtype = torch.get_default_dtype()
        constants = schedule_constants(SCHEDULES[schedule](self.timesteps))
        for name, value in constants.items():
            self.register_buffer(name, value.to(dtype), persistent=False)
        # the proposal pi_t of t = 2..T (entries 0 and 1 are 0) and its cumulative sums
        prob = timestep_proposal(constants, self.timestep_proposal)
        self.register_buffer("t_prob", prob.to(dtype), persistent=False)
        self.register_buffer("t_cdf", prob[2:].cumsum(0).to(dtype), persistent=False)
        # x in data units = offset + x0 / scale; the density of x is scale^D times that of x0
        lo, hi = self.data_range if self.data_range is not None else (-1.0, 1.0)
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
        return from_prediction(xt, out, self._at("alpha_bar", t), self.prediction)

    def _net(self, xt, t, y):
        """The denoiser on any batch shape (it takes flat batches)."""
        batch = xt.shape[:-1]
        flat_x, flat_t = xt.reshape(-1, self.data_dim), t.reshape(-1)
        with torch.autocast(flat_x.device.type, dtype=torch.bfloat16, enabled=self.mixed_precision):
            if self.num_classes:
                out = self.denoiser(flat_x, flat_t, None if y is None else y.expand(batch).reshape(-1))
            else:
                out = self.denoiser(flat_x, flat_t)
        return out.to(xt.dtype).reshape(*batch, out.shape[-1])

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
        return reverse_scale(self.variance, self._at("beta", t), self._at("sigma2", t), v)

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
