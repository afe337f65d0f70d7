r"""The GAN game, computed: the optimal discriminator and the divergence it measures, and
why simultaneous gradient steps spiral.

**The optimal discriminator** (Goodfellow et al. 2014, prop. 1). For a fixed generator
with density :math:`q`, the value :math:`V(D) = \mathbb E_p \log D + \mathbb E_q \log(1 -
D)` is maximized pointwise by :math:`D^*(x) = p(x) / (p(x) + q(x))`, and then

.. math::
    V(D^*) = \mathrm{KL}\big(p \,\big\|\, \tfrac{p+q}{2}\big)
           + \mathrm{KL}\big(q \,\big\|\, \tfrac{p+q}{2}\big) - \log 4
           = 2\,\mathrm{JSD}(p, q) - \log 4,

which is :math:`-\log 4` exactly when :math:`q = p`. :func:`optimal_discriminator`
computes :math:`D^*`, :math:`V(D^*)` and the JSD by quadrature on a grid, separately, so
the identity is a check, not a definition.

**Simultaneous against alternating steps** on the bilinear game
:math:`\min_x \max_y xy` (the notes' example). Its only equilibrium is (0, 0).
Simultaneous gradient steps :math:`x' = x - \eta y`, :math:`y' = y + \eta x` are the
linear map :math:`\begin{pmatrix}1 & -\eta\\ \eta & 1\end{pmatrix}`, a rotation scaled by
:math:`\sqrt{1+\eta^2} > 1`: the iterates spiral outward. Alternating steps
(:math:`y' = y + \eta x'` with the new :math:`x'`) give a map of determinant 1 whose
eigenvalues lie on the unit circle for :math:`\eta < 2`: the iterates circle the
equilibrium for ever, never reaching it. :func:`bilinear_game` runs both, and the closed
forms are their matrix powers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..checks import check_float, check_int

__all__ = [
    "OptimalDiscriminator",
    "optimal_discriminator",
    "BilinearGame",
    "bilinear_game",
    "gaussian_mixture_logpdf",
    "trained_discriminator",
    "mode_collapse",
    "ModeCollapse",
]


def gaussian_mixture_logpdf(points: np.ndarray, means, sds, weights=None) -> np.ndarray:
    """Log density of an isotropic Gaussian mixture at ``points`` ``(N, D)``: components
    with ``means`` ``(K, D)``, standard deviations ``sds`` ``(K,)`` and ``weights``."""
    points = np.atleast_2d(np.asarray(points, dtype=np.float64))
    means = np.atleast_2d(np.asarray(means, dtype=np.float64))
    sds = np.broadcast_to(np.asarray(sds, dtype=np.float64), (len(means),))
    w = np.full(len(means), 1 / len(means)) if weights is None else np.asarray(weights, dtype=np.float64)
    d = points.shape[1]
    sq = ((points[:, None, :] - means[None]) ** 2).sum(-1) / sds**2
    log_comp = -0.5 * sq - d * np.log(sds) - 0.5 * d * math.log(2 * math.pi) + np.log(w)
    top = log_comp.max(1, keepdims=True)
    return (top + np.log(np.exp(log_comp - top).sum(1, keepdims=True)))[:, 0]


@dataclass(frozen=True)
class OptimalDiscriminator:
    """What :func:`optimal_discriminator` computed on its grid.

    Attributes:
        d_star: :math:`D^*` at each grid point.
        value: :math:`V(D^*)` by quadrature.
        jsd: :math:`\\mathrm{JSD}(p, q)` by quadrature (nats).
        mass_p, mass_q: the quadrature masses of p and q (1 up to the grid's error).
    """

    d_star: np.ndarray
    value: float
    jsd: float
    mass_p: float
    mass_q: float


def optimal_discriminator(log_p: np.ndarray, log_q: np.ndarray, cell: float) -> OptimalDiscriminator:
    """:math:`D^*`, :math:`V(D^*)` and the JSD from the log densities ``log_p`` and
    ``log_q`` on the points of a grid whose cells have volume ``cell``."""
    log_p, log_q = np.asarray(log_p, dtype=np.float64), np.asarray(log_q, dtype=np.float64)
    if log_p.shape != log_q.shape:
        raise ValueError(f"log_p {log_p.shape} and log_q {log_q.shape} must be on the same grid")
    cell = check_float("cell", cell, positive=True)
    p, q = np.exp(log_p), np.exp(log_q)
    log_sum = np.logaddexp(log_p, log_q)
    log_d, log_not_d = log_p - log_sum, log_q - log_sum  # log D*, log(1 - D*)
    value = float((p * log_d + q * log_not_d).sum() * cell)
    log_m = log_sum - math.log(2)
    kl_pm = float((p * (log_p - log_m)).sum() * cell)
    kl_qm = float((q * (log_q - log_m)).sum() * cell)
    return OptimalDiscriminator(
        np.exp(log_d), value, 0.5 * (kl_pm + kl_qm), float(p.sum() * cell), float(q.sum() * cell)
    )


@dataclass(frozen=True)
class BilinearGame:
    """Iterates of gradient steps on :math:`\\min_x \\max_y xy` from one start.

    Attributes:
        simultaneous, alternating: ``(steps + 1, 2)`` arrays of (x, y).
        simultaneous_exact, alternating_exact: the same from the matrix powers.
    """

    simultaneous: np.ndarray
    alternating: np.ndarray
    simultaneous_exact: np.ndarray
    alternating_exact: np.ndarray


def bilinear_game(*, lr: float = 0.1, steps: int = 100, start=(1.0, 1.0)) -> BilinearGame:
    """Run simultaneous and alternating gradient steps on :math:`xy` (module docstring)."""
    lr = check_float("lr", lr, positive=True)
    steps = check_int("steps", steps, minimum=1)
    sim, alt = [np.array(start, dtype=np.float64)], [np.array(start, dtype=np.float64)]
    for _ in range(steps):
        x, y = sim[-1]
        sim.append(np.array([x - lr * y, y + lr * x]))  # both gradients at the old point
        x, y = alt[-1]
        x_new = x - lr * y
        alt.append(np.array([x_new, y + lr * x_new]))  # y's step sees the new x
    a_sim = np.array([[1.0, -lr], [lr, 1.0]])
    a_alt = np.array([[1.0, -lr], [lr, 1.0 - lr**2]])
    first = np.array(start, dtype=np.float64)

    def powers(a):
        return np.stack([np.linalg.matrix_power(a, k) @ first for k in range(steps + 1)])

    return BilinearGame(np.stack(sim), np.stack(alt), powers(a_sim), powers(a_alt))


def trained_discriminator(real, fake, points, *, steps: int = 2000, seed: int = 0) -> np.ndarray:
    """D(points) of a critic trained by the adversarial objective's own critic steps
    (:class:`pgen.inference.adversarial.Adversarial`, the logistic loss of the minimax
    game) on the samples ``real`` of p and ``fake`` of a fixed q, both ``(N, D)``; to
    compare with :math:`D^*`."""
    import pyro
    import torch
    from torch import nn

    from ..inference.adversarial import Adversarial

    steps = check_int("steps", steps, minimum=1)
    real = torch.as_tensor(np.asarray(real), dtype=torch.float32)
    fake = torch.as_tensor(np.asarray(fake), dtype=torch.float32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        width = real.shape[1]
        critic = nn.Sequential(
            nn.Linear(width, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1)
        )
        game = Adversarial(critic, loss="minimax", lr=3e-3, betas=(0.9, 0.999))

        def fixed_q(x=None, *, n=None):
            with pyro.plate("data", n):
                idx = torch.randint(len(fake), (n,))
                return pyro.deterministic("obs", fake[idx], event_dim=1)

        for _ in range(steps):
            batch = real[torch.randint(len(real), (256,))]
            game._critic_step(fixed_q, batch, None, {})
        with torch.no_grad():
            return torch.sigmoid(critic(torch.as_tensor(np.asarray(points), dtype=torch.float32))).numpy()[
                :, 0
            ]


def _loss_setting(label: str) -> tuple[str, dict]:
    """``"wgan-gp lambda=0.1"`` -> ``("wgan-gp", {"gp_weight": 0.1})``; ``one-sided`` too."""
    name, *words = label.split()
    options: dict = {}
    for word in words:
        if word == "one-sided":
            options["one_sided"] = True
        elif word.startswith("lambda="):
            options["gp_weight"] = float(word.split("=", 1)[1])
        else:
            raise ValueError(f"loss {label!r}: {word!r} is not 'one-sided' or 'lambda=<gp weight>'")
    return name, options


@dataclass(frozen=True)
class ModeCollapse:
    """What :func:`mode_collapse` measured, per loss.

    Attributes:
        steps: the generator steps at which each loss was measured.
        modes: modes covered (of 8) at those steps.
        quality: high-quality fraction of the samples at those steps.
        samples: the final samples ``(n, 2)``.
    """

    steps: list[int]
    modes: dict[str, list[int]]
    quality: dict[str, list[float]]
    samples: dict[str, np.ndarray]


def mode_collapse(
    losses=(
        "minimax",
        "nonsaturating",
        "lsgan",
        "wgan-gp",
        "wgan-gp lambda=1",
        "wgan-gp lambda=0.1",
        "wgan-gp one-sided",
    ),
    *,
    steps: int = 3000,
    every: int = 500,
    n: int = 2000,
    seed: int = 0,
    folder=None,
) -> ModeCollapse:
    """Train the same MLP generator on the ring of 8 Gaussians (``pgen.data``'s
    ``gaussians``: unit circle, sd 0.05) with each of ``losses`` (names of
    :data:`pgen.inference.adversarial.LOSSES`; ``"wgan-gp one-sided"`` for the one-sided
    penalty), and measure modes covered
    and high-quality fraction (:func:`pgen.eval.quality.mode_coverage`) of ``n`` samples
    every ``every`` steps. The run is continued from its checkpoint between measurements
    (``folder``, a temporary one by default), so it is one uninterrupted training."""
    import tempfile
    from pathlib import Path

    import torch

    from .. import data, fit
    from ..eval.quality import mode_coverage
    from ..models import GAN

    steps, every = check_int("steps", steps, minimum=1), check_int("every", every, minimum=1)
    x, _ = data.load("gaussians", n=4000, seed=seed)
    angles = 2 * math.pi * torch.arange(8) / 8
    centres = torch.stack([torch.cos(angles), torch.sin(angles)], 1)
    marks = list(range(every, steps + 1, every)) or [steps]
    modes, quality, samples = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(folder or tmp)
        for loss in losses:
            torch.manual_seed(seed)
            m = GAN(2, latent_dim=2, hidden=(128, 128), output="linear", batch_norm=False)
            name, options = _loss_setting(loss)
            critic_steps = 5 if name.startswith("wgan") else 1
            game = m.adversarial(loss=name, critic_steps=critic_steps, critic_lr=1e-3, **options)
            modes[loss], quality[loss] = [], []
            for mark in marks:
                fit(
                    m.model,
                    m.guide,
                    x,
                    objective=game,
                    steps=mark,
                    batch_size=256,
                    lr=1e-3,
                    seed=seed,
                    progress=False,
                    checkpoint_dir=root / loss,
                    checkpoint_every=every,
                    resume=mark != marks[0],
                )
                draws = m.sample(n, seed=seed)
                covered, good = mode_coverage(draws, centres, 0.05)
                modes[loss].append(covered)
                quality[loss].append(good)
            samples[loss] = draws.numpy()
    return ModeCollapse(marks, modes, quality, samples)
