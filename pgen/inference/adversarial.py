r"""The adversarial game as an objective of the shared SVI engine.

A generator is a Pyro model: :math:`z` from its prior inside ``pyro.plate("data")`` and
the generated example :math:`G(z)` at the deterministic site ``"obs"``; it has no guide.
:class:`Adversarial` owns the discriminator (critic) :math:`D` and its optimizer. Each
engine step on a minibatch of real data takes ``critic_steps`` steps on :math:`D`, then
returns the generator's loss with its gradient, which the engine applies with its own
optimizer, schedule, clipping, checkpoints and resume. The critic's weights, its
optimizer's state and its step count are the objective's ``state_dict()``, written in
pgen's checkpoints, so an interrupted run resumes exactly. With a ``monitor`` (a callable
giving draws at fixed latent values, e.g. :meth:`pgen.models.GAN.progress_draws`) it
also keeps those draws after 0, 1, 2, 4, 8, ... generator steps (:attr:`snapshots`, in
the checkpoints too): the figure of samples over training.

Losses (:math:`p` the data, :math:`q` the generator's distribution):

* ``minimax`` (Goodfellow et al. 2014): :math:`\max_D \mathbb E_p \log D + \mathbb E_q
  \log(1 - D)`, :math:`\min_G \mathbb E_q \log(1 - D(G(z)))`. At the optimal
  :math:`D^* = p/(p+q)` the value is :math:`2\,\mathrm{JSD}(p, q) - \log 4`.
* ``nonsaturating``: the same critic; the generator maximizes :math:`\mathbb E_q \log D`
  instead, whose gradient does not vanish where :math:`D \approx 0` (the notes' fix for
  early training).
* ``lsgan`` (Mao et al. 2017): least squares, :math:`\min_D \tfrac12\mathbb E_p(D-1)^2 +
  \tfrac12\mathbb E_q D^2`, :math:`\min_G \tfrac12\mathbb E_q (D-1)^2`.
* ``wgan-gp`` (Gulrajani et al. 2017): a critic :math:`f` maximizes
  :math:`\mathbb E_p f - \mathbb E_q f - \lambda\,\mathbb E_{\hat x}(\|\nabla f(\hat x)\| - 1)^2`
  on random interpolates :math:`\hat x`; the generator minimizes :math:`-\mathbb E_q f`.
  :math:`\mathbb E_p f - \mathbb E_q f` estimates the Wasserstein-1 distance.
* ``wgan`` (Arjovsky et al. 2017): the same game with the critic's weights clipped to
  :math:`[-c, c]` after each of its steps (RMSprop, as in the paper).

The engine's ``train_elbo`` for these runs is minus the critic's loss per example (for
the Wasserstein losses: the distance estimate); it is not a bound on a likelihood.
"""

from __future__ import annotations

from collections.abc import Callable

import pyro
import torch
from pyro.poutine.messenger import Messenger
from torch import nn
from torch.nn import functional as F

from ..checks import check_choice, check_float, check_int

__all__ = ["Adversarial", "LOSSES", "generate"]

LOSSES = ("minimax", "nonsaturating", "lsgan", "wgan-gp", "wgan")


class _CaptureObs(Messenger):
    """Keeps the value and scale of the site ``"obs"``: all a game needs of the model's
    run, at less cost than a full trace (bench/gan.py)."""

    def __init__(self):
        super().__init__()
        self.site: dict | None = None

    def _postprocess_message(self, msg):
        if msg["name"] == "obs":
            self.site = {"value": msg["value"], "scale": msg["scale"]}


def generate(model, n: int, kwargs: dict) -> tuple[torch.Tensor, float]:
    """``n`` examples from a generator model (its ``"obs"`` site) and the engine's
    minibatch scale on its data plate (1.0 outside :func:`pgen.fit`)."""
    with _CaptureObs() as capture:
        model(None, n=n, **kwargs)
    site = capture.site
    if site is None:
        raise ValueError(
            "an adversarial objective trains a generator: a model whose generated example is the "
            "site 'obs' (pyro.deterministic('obs', G(z)) inside pyro.plate('data', n))"
        )
    scale = site["scale"]
    scale = float(scale) if not torch.is_tensor(scale) else float(scale.reshape(-1)[0])
    return site["value"], scale


class Adversarial(pyro.infer.ELBO):
    """The adversarial game (module docstring) as an objective for :func:`pgen.fit`.

    The generator's latent sites have no guide: the engine does not ask for one
    (``traces_guide = False``); pass ``guide=lambda *a, **k: None`` or the model's own
    empty guide.

    Args:
        critic: the discriminator/critic, ``critic(x)`` or ``critic(x, y)`` for a
            conditional game (``y`` the labels the engine passes), giving one score per
            example (a logit for ``minimax``/``nonsaturating``, a real value otherwise).
        loss: one of :data:`LOSSES`.
        critic_steps: critic updates per generator update (5 is usual for the WGANs).
        lr, betas: the critic's Adam (RMSprop with ``lr`` for ``wgan``).
        gp_weight: :math:`\\lambda` of ``wgan-gp``.
        clip: :math:`c` of ``wgan``.
        monitor: called with no arguments after 0, 1, 2, 4, ... generator steps; what it
            returns (draws at fixed latent values) is kept in :attr:`snapshots`.
    """

    traces_guide = False

    def __init__(
        self,
        critic: nn.Module,
        *,
        loss: str = "nonsaturating",
        critic_steps: int = 1,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        gp_weight: float = 10.0,
        one_sided: bool = False,
        clip: float = 0.01,
        monitor: Callable[[], torch.Tensor] | None = None,
    ):
        super().__init__(num_particles=1)
        if not isinstance(critic, nn.Module):
            raise TypeError(f"critic must be a torch.nn.Module; got {type(critic).__name__}")
        self.critic = critic
        self.loss_name = check_choice("loss", loss, LOSSES)
        self.critic_steps = check_int("critic_steps", critic_steps, minimum=1)
        self.lr = check_float("lr", lr, positive=True)
        self.gp_weight = check_float("gp_weight", gp_weight, nonnegative=True)
        self.one_sided = bool(one_sided)
        self.clip = check_float("clip", clip, positive=True)
        if self.loss_name == "wgan":
            self.critic_optimizer = torch.optim.RMSprop(critic.parameters(), lr=self.lr)
        else:
            self.critic_optimizer = torch.optim.Adam(critic.parameters(), lr=self.lr, betas=tuple(betas))
        if monitor is not None and not callable(monitor):
            raise TypeError(f"monitor must be a callable or None; got {type(monitor).__name__}")
        self.monitor = monitor
        self.critic_updates = 0
        self.generator_updates = 0
        self.snapshots: list[tuple[int, torch.Tensor]] = []
        self.last: dict[str, float] = {}

    # -- the game
    def _score(self, x: torch.Tensor, y) -> torch.Tensor:
        out = self.critic(x) if y is None else self.critic(x, y)
        return out.reshape(len(x))

    def critic_loss(self, real: torch.Tensor, fake: torch.Tensor, y=None) -> torch.Tensor:
        """The critic's loss on a real and a generated batch (minimized by the critic)."""
        d_real, d_fake = self._score(real, y), self._score(fake, y)
        if self.loss_name in ("minimax", "nonsaturating"):
            return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()  # -log D(x) - log(1 - D(G(z)))
        if self.loss_name == "lsgan":
            return 0.5 * ((d_real - 1) ** 2).mean() + 0.5 * (d_fake**2).mean()
        loss = d_fake.mean() - d_real.mean()
        if self.loss_name == "wgan-gp":
            loss = loss + self.gp_weight * self._gradient_penalty(real, fake, y)
        return loss

    def _gradient_penalty(self, real, fake, y):
        shape = (len(real),) + (1,) * (real.dim() - 1)
        t = torch.rand(shape, dtype=real.dtype, device=real.device)
        mixed = (t * real + (1 - t) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(self._score(mixed, y).sum(), mixed, create_graph=True)
        excess = grad.reshape(len(real), -1).norm(dim=1) - 1
        if self.one_sided:
            excess = excess.clamp_min(0.0)
        return (excess**2).mean()

    def generator_loss(self, fake: torch.Tensor, y=None) -> torch.Tensor:
        """The generator's loss on a generated batch (its gradient reaches G through ``fake``)."""
        d_fake = self._score(fake, y)
        if self.loss_name == "minimax":
            return -F.softplus(d_fake).mean()  # log(1 - D) = -softplus(logit)
        if self.loss_name == "nonsaturating":
            return F.softplus(-d_fake).mean()  # -log D
        if self.loss_name == "lsgan":
            return 0.5 * ((d_fake - 1) ** 2).mean()
        return -d_fake.mean()

    def _critic_step(self, model, real, y, kwargs) -> float:
        with torch.no_grad():
            fake, _ = generate(model, len(real), kwargs)
        loss = self.critic_loss(real, fake.detach(), y)
        self.critic_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_optimizer.step()
        if self.loss_name == "wgan":
            with torch.no_grad():
                for p in self.critic.parameters():
                    p.clamp_(-self.clip, self.clip)
        self.critic_updates += 1
        return float(loss.detach())

    def _data(self, args, kwargs):
        if not args or not torch.is_tensor(args[0]):
            raise ValueError("an adversarial objective needs the data batch as the model's first argument")
        return args[0], kwargs.get("y")

    def _to_device(self, real: torch.Tensor) -> None:
        p = next(self.critic.parameters(), None)
        if p is not None and p.device != real.device:
            self.critic.to(real.device)
            for state in self.critic_optimizer.state.values():
                for k, v in state.items():
                    if torch.is_tensor(v):
                        state[k] = v.to(real.device)

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        """``critic_steps`` critic updates, then the generator's loss, backpropagated.
        Returns the critic's last loss, scaled to the data set (the engine's loss)."""
        real, y = self._data(args, kwargs)
        self._to_device(real)
        step = self.generator_updates
        if self.monitor is not None and (step & (step - 1)) == 0:  # 0 and the powers of 2
            self.snapshots.append((step, self.monitor().detach().cpu()))
        for _ in range(self.critic_steps):
            critic = self._critic_step(model, real, y, kwargs)
        fake, scale = generate(model, len(real), kwargs)
        g_loss = self.generator_loss(fake, y)
        g_loss.backward()
        for p in self.critic.parameters():  # the critic moves only in its own steps
            p.grad = None
        self.last = {"critic": critic, "generator": float(g_loss.detach())}
        self.generator_updates += 1
        return critic * scale * len(real)

    def loss(self, model, guide, *args, **kwargs) -> float:
        """The critic's loss on a batch against fresh generated examples; nothing moves."""
        real, y = self._data(args, kwargs)
        self._to_device(real)
        with torch.no_grad():
            fake, scale = generate(model, len(real), kwargs)
        if self.loss_name == "wgan-gp":
            value = self.critic_loss(real, fake, y)  # the penalty needs input gradients
        else:
            with torch.no_grad():
                value = self.critic_loss(real, fake, y)
        return float(value.detach()) * scale * len(real)

    def differentiable_loss(self, model, guide, *args, **kwargs):  # pragma: no cover - not a bound
        raise NotImplementedError(
            "the adversarial game has no single differentiable loss; use loss_and_grads"
        )

    def _get_trace(self, model, guide, args, kwargs):  # pragma: no cover - Pyro's abstract hook
        raise NotImplementedError("an adversarial objective does not trace a guide")

    # -- checkpoints
    def state_dict(self) -> dict:
        return {
            "critic": {k: v.detach().cpu().clone() for k, v in self.critic.state_dict().items()},
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "critic_updates": self.critic_updates,
            "generator_updates": self.generator_updates,
            "snapshots": [(step, draws.clone()) for step, draws in self.snapshots],
        }

    def load_state_dict(self, state: dict) -> None:
        if not state:
            return
        self.critic.load_state_dict(state["critic"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.critic_updates = int(state["critic_updates"])
        self.generator_updates = int(state.get("generator_updates", 0))
        self.snapshots = [(int(step), draws) for step, draws in state.get("snapshots", [])]
