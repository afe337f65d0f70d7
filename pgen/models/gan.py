r"""Generative adversarial networks as Pyro models (the generator) with their critic.

The generator is a Pyro model with no guide: :math:`z \sim \mathcal N(0, I)` and the
generated example :math:`G(z)` at the deterministic site ``"obs"``, inside
``pyro.plate("data")``. The critic (discriminator) lives in the same module, so the run's
model file holds both, but it is not a Pyro parameter: the game's objective,
:class:`pgen.inference.adversarial.Adversarial`, built by :meth:`GAN.adversarial`,
trains it with its own optimizer inside each engine step.

Architectures: ``mlp`` (for 2-D toys and the 8x8 digits) and ``dcgan`` for square
images of a side divisible by 4, e.g. 28x28 (Radford et al. 2016: the generator upsamples
a 7x7 map by two stride-2 transposed convolutions with batch norm and ReLU; the critic
mirrors it with stride-2 convolutions and leaky ReLU, with no batch norm, which the
gradient penalty forbids). With ``num_classes`` the game is conditional (Mirza &
Osindero 2014): the label's one-hot code is appended to :math:`z` and enters the critic
(as extra input to an MLP critic, as constant feature maps to a convolutional one).

``gan`` (non-saturating loss), ``lsgan`` and ``wgan`` (gradient penalty, 5 critic steps)
are the same model with other default losses; ``--loss`` chooses any of
:data:`pgen.inference.adversarial.LOSSES`.
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch
from torch import nn
from torch.nn import functional as F

from ..checks import check_choice, check_int, check_int_tuple
from ..data.validate import check_data
from ..inference.adversarial import LOSSES, Adversarial
from . import registry
from .protocols import configured

__all__ = ["GAN", "WGAN", "LSGAN", "MLPGenerator", "MLPCritic"]

ARCHITECTURES = ("mlp", "dcgan")


class MLPGenerator(nn.Module):
    """ReLU MLP, with batch norm after each hidden linear layer if ``batch_norm``."""

    def __init__(self, in_dim: int, hidden, out_dim: int, squash: bool, batch_norm: bool = False):
        super().__init__()
        layers, width = [], in_dim
        for h in hidden:
            layers += [nn.Linear(width, h), *([nn.BatchNorm1d(h)] if batch_norm else []), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, out_dim))
        self.net, self.squash = nn.Sequential(*layers), squash

    def forward(self, z):
        out = self.net(z)
        return torch.sigmoid(out) if self.squash else out


class MLPCritic(nn.Module):
    """Leaky-ReLU MLP with one output; its last layer starts at zero (the critic starts
    indifferent, which keeps the two-sided gradient penalty from pinning its sign)."""

    def __init__(self, in_dim: int, hidden):
        super().__init__()
        layers, width = [], in_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        last = nn.Linear(width, 1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*layers, last)

    def forward(self, x):
        return self.net(x).squeeze(-1)


class _ConvGenerator(nn.Module):
    def __init__(self, in_dim: int, side: int, channels: int):
        super().__init__()
        self.start = side // 4
        self.fc = nn.Linear(in_dim, 2 * channels * self.start**2)
        self.body = nn.Sequential(
            nn.BatchNorm2d(2 * channels),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * channels, channels, 4, stride=2, padding=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.ConvTranspose2d(channels, 1, 4, stride=2, padding=1),
        )
        self.channels = channels

    def forward(self, z):
        h = self.fc(z).reshape(len(z), 2 * self.channels, self.start, self.start)
        return torch.sigmoid(self.body(h)).flatten(1)


class _ConvCritic(nn.Module):
    def __init__(self, side: int, channels: int, extra: int):
        super().__init__()
        self.side = side
        self.body = nn.Sequential(
            nn.Conv2d(1 + extra, channels, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(channels, 2 * channels, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
        )
        self.out = nn.Linear(2 * channels * (side // 4) ** 2, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x):
        return self.out(self.body(x).flatten(1)).squeeze(-1)


class _Critic(nn.Module):
    """The critic of a (conditional) game: ``critic(x)`` or ``critic(x, y)``."""

    def __init__(self, net: nn.Module, num_classes: int, image_side: int | None):
        super().__init__()
        self.net, self.num_classes, self.image_side = net, num_classes, image_side

    def forward(self, x, y=None):
        if self.image_side is not None:
            x = x.reshape(len(x), 1, self.image_side, self.image_side)
        if self.num_classes:
            code = F.one_hot(y.long(), self.num_classes).to(x.dtype)
            if self.image_side is not None:
                code = code[:, :, None, None].expand(-1, -1, self.image_side, self.image_side)
                x = torch.cat([x, code], 1)
            else:
                x = torch.cat([x, code], -1)
        return self.net(x)


def _data_args(x, y):
    x = x.reshape(len(x), -1)
    in_unit = bool(x.numel()) and float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    return {"data_dim": int(x.shape[1]), "output": "sigmoid" if in_unit and x.shape[1] > 2 else "linear"}


@registry.register("gan", family="adversarial", reads=("data_dim", "output"), data_args=_data_args)
class GAN(nn.Module):
    """A generator and its critic (module docstring).

    Args:
        data_dim: size of one flattened example.
        latent_dim: the dimension of z.
        hidden: MLP hidden widths (the critic mirrors the generator).
        architecture: ``"mlp"`` or ``"dcgan"`` (square images, side divisible by 4).
        channels: the DCGAN's base number of feature maps.
        num_classes: > 0 for a conditional game on the labels ``y``.
        batch_norm: batch norm in the MLP generator's hidden layers, as DCGAN's generator
            has (Radford et al. 2016). Without it, the non-saturating and least-squares
            games on the 8x8 digits collapsed to one image within 64 steps, in pgen and in
            a hand-written loop alike (README, "GANs"); the ring study of ``pgen teach
            modes`` uses the plain MLP of the literature's toy experiments.
        output: ``"sigmoid"`` (images in [0, 1]) or ``"linear"`` (real data); read off
            the data.
        loss, critic_steps, critic_lr: the game's defaults (:meth:`adversarial`).
    """

    default_loss = "nonsaturating"
    default_critic_steps = 1

    @configured
    def __init__(
        self,
        data_dim: int,
        latent_dim: int = 16,
        hidden: tuple[int, ...] = (256, 256),
        architecture: str = "mlp",
        channels: int = 32,
        num_classes: int = 0,
        output: str = "sigmoid",
        batch_norm: bool = True,
    ):
        super().__init__()
        self.data_dim = check_int("data_dim", data_dim, minimum=1)
        self.latent_dim = check_int("latent_dim", latent_dim, minimum=1)
        self.num_classes = check_int("num_classes", num_classes, minimum=0)
        self.architecture = check_choice("architecture", architecture, ARCHITECTURES)
        self.output = check_choice("output", output, ("sigmoid", "linear"))
        hidden = check_int_tuple("hidden", hidden)
        z_dim = self.latent_dim + self.num_classes
        if self.architecture == "dcgan":
            side = math.isqrt(self.data_dim)
            if side * side != self.data_dim or side % 4:
                raise ValueError(
                    f"architecture='dcgan' needs square images with a side divisible by 4; data_dim="
                    f"{self.data_dim} is not one (use architecture='mlp')"
                )
            if self.output != "sigmoid":
                raise ValueError("architecture='dcgan' generates images in [0, 1] (output='sigmoid')")
            channels = check_int("channels", channels, minimum=1)
            self.generator = _ConvGenerator(z_dim, side, channels)
            self.critic = _Critic(_ConvCritic(side, channels, self.num_classes), self.num_classes, side)
        else:
            self.generator = MLPGenerator(
                z_dim, hidden, self.data_dim, self.output == "sigmoid", batch_norm=bool(batch_norm)
            )
            critic_net = MLPCritic(self.data_dim + self.num_classes, tuple(reversed(hidden)))
            self.critic = _Critic(critic_net, self.num_classes, None)
        self.register_buffer("_zero", torch.zeros(()), persistent=False)

    @property
    def event_shape(self) -> tuple[int, ...]:
        return (self.data_dim,)

    def _labels(self, y, n):
        if not self.num_classes:
            return None
        if y is None:
            raise ValueError(
                f"this GAN is conditional on {self.num_classes} classes: pass y, one label per example"
            )
        y = torch.as_tensor(y, device=self._zero.device).long()
        if y.shape != (n,) or int(y.min()) < 0 or int(y.max()) >= self.num_classes:
            raise ValueError(f"y must hold {n} labels in 0..{self.num_classes - 1}")
        return y

    def model(self, x=None, *, y=None, n=None):
        """z ~ N(0, I), obs = G(z) (or G(z, y)); ``x`` only gives the number of examples.

        The generator's parameters are registered with Pyro only where a gradient can
        flow: the critic's fakes and ``sample`` run under ``torch.no_grad`` and skip it
        (0.16 ms a call, measured; bench/gan.py), with the same draws."""
        if torch.is_grad_enabled():
            pyro.module("generator", self.generator)
        n = len(x) if x is not None else (n if n is not None else (len(y) if y is not None else 1))
        labels = self._labels(y, n)
        with pyro.plate("data", n):
            prior = dist.Normal(self._zero, 1.0).expand([self.latent_dim]).to_event(1)
            z = pyro.sample("z", prior)
            if labels is not None:
                z = torch.cat(
                    [z, F.one_hot(labels, self.num_classes).to(z.dtype).expand(*z.shape[:-1], -1)], -1
                )
            return pyro.deterministic("obs", self.generator(z), event_dim=1)

    def guide(self, x=None, *, y=None, n=None):
        """A generator has no guide."""

    def adversarial(
        self,
        loss: str | None = None,
        critic_steps: int | None = None,
        critic_lr: float = 2e-4,
        gp_weight: float = 10.0,
        one_sided: bool = False,
        clip: float = 0.01,
        progress_samples: int | None = None,
    ) -> Adversarial:
        """The game's objective for :func:`pgen.fit`, owning this model's critic.

        Args:
            loss: one of :data:`pgen.inference.adversarial.LOSSES` (default: the model's).
            critic_steps: critic updates per generator update (default: the model's).
            critic_lr: the critic's learning rate.
            gp_weight: the gradient penalty's weight (``wgan-gp``).
            one_sided: penalize only gradient norms above 1 (Petzka et al. 2018).
            clip: the weight clip of ``wgan``.
            progress_samples: draws at fixed z (:meth:`progress_draws`) kept after 0, 1,
                2, 4, ... generator steps, for the figure of training (default 16 for
                images, 256 for points; 0 for none).
        """
        loss = check_choice("loss", loss or self.default_loss, LOSSES)
        steps = self.default_critic_steps if critic_steps is None else critic_steps
        betas = (0.5, 0.9) if loss.startswith("wgan") else (0.5, 0.999)
        if progress_samples is None:
            progress_samples = 256 if self.data_dim <= 2 else 16
        k = check_int("progress_samples", progress_samples, minimum=0)
        return Adversarial(
            self.critic,
            loss=loss,
            critic_steps=steps,
            lr=critic_lr,
            betas=betas,
            gp_weight=gp_weight,
            one_sided=one_sided,
            clip=clip,
            monitor=(lambda: self.progress_draws(k)) if k else None,
        )

    def progress_draws(self, n: int) -> torch.Tensor:
        """``n`` draws at fixed z (seed 0; labels ``0, 1, ..., C-1, 0, ...`` if
        conditional): the same latent values at every point of training."""
        y = torch.arange(n) % self.num_classes if self.num_classes else None
        return self.sample(n, seed=0, y=y)

    @torch.no_grad()
    def sample(self, n: int, *, seed: int | None = None, y=None) -> torch.Tensor:
        """``n`` generated examples ``(n, data_dim)`` (for labels ``y`` if conditional)."""
        n = check_int("n", n, minimum=1)
        was = self.training
        self.eval()
        try:
            with torch.random.fork_rng(devices=[], enabled=seed is not None):
                if seed is not None:
                    torch.manual_seed(check_int("seed", seed, minimum=0))
                return self.model(n=n, y=y)
        finally:
            self.train(was)

    def validate_data(self, x, y=None, *, name: str = "x") -> None:
        x = check_data(x, name=name, event_shape=self.event_shape)
        if self.output == "sigmoid" and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
            raise ValueError(
                f"{name} must lie in [0, 1] for a generator with output='sigmoid'; got values in "
                f"[{float(x.min()):.3g}, {float(x.max()):.3g}]"
            )
        if self.num_classes and y is None:
            raise ValueError(f"this GAN is conditional on {self.num_classes} classes: the data need labels")


@registry.register("wgan", family="adversarial", reads=("data_dim", "output"), data_args=_data_args)
class WGAN(GAN):
    """A GAN whose default game is WGAN-GP with 5 critic steps (Gulrajani et al. 2017);
    its constructor and arguments are :class:`GAN`'s."""

    default_loss = "wgan-gp"
    default_critic_steps = 5


@registry.register("lsgan", family="adversarial", reads=("data_dim", "output"), data_args=_data_args)
class LSGAN(GAN):
    """A GAN whose default game is least squares (Mao et al. 2017); its constructor and
    arguments are :class:`GAN`'s."""

    default_loss = "lsgan"
