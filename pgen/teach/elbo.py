r"""The ELBO, term by term, and the importance-weighted bounds, computed on real models.

For one example :math:`x`, a model :math:`p(x, z) = p(z)\,p(x \mid z)` and a guide
:math:`q(z \mid x)`:

.. math::
    \log p(x) = \underbrace{\mathbb E_q[\log p(x \mid z)]
    - \mathrm{KL}(q(z \mid x) \,\|\, p(z))}_{\mathrm{ELBO}}
    + \mathrm{KL}(q(z \mid x) \,\|\, p(z \mid x)).

:func:`elbo_decomposition` computes each piece: the reconstruction term by Monte Carlo,
the KL to the prior both by Monte Carlo and in closed form where PyTorch knows it, the
ELBO, and, where the model's evidence and posterior are exact (probabilistic PCA and
other linear-Gaussian models), the gap :math:`\log p(x) - \mathrm{ELBO}` next to an
independently computed :math:`\mathrm{KL}(q \,\|\, p(z \mid x))`: the identity above,
checked numerically.

:func:`iwae_curve` gives the importance-weighted bound
:math:`\mathcal L_K = \mathbb E[\log \frac1K \sum_k p(x, z_k)/q(z_k \mid x)]` for several
K: :math:`\mathcal L_1` is the ELBO, :math:`\mathcal L_K` never decreases with K, and it
tends to :math:`\log p(x)` (Burda, Grosse & Salakhutdinov 2016, Theorem 1).

References:
    Kingma & Welling (2014), Auto-Encoding Variational Bayes.
    Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyro
import torch
from pyro import poutine
from pyro.poutine.util import prune_subsample_sites

from ..checks import check_int
from ..data.validate import check_data
from ..eval.likelihood import _max_plate_nesting, _site_log_weight, log_weights

__all__ = ["ELBODecomposition", "elbo_decomposition", "iwae_curve", "IWAECurve", "track_elbo_terms"]

_PARTICLES = "_pgen_teach_particles"


@dataclass(frozen=True)
class ELBODecomposition:
    """The pieces of the ELBO of each example (nats), as tensors ``(N,)``.

    Attributes:
        reconstruction: :math:`\\mathbb E_q[\\log p(x|z)]` (Monte Carlo).
        kl_mc: :math:`\\mathrm{KL}(q(z|x)\\|p(z))` by Monte Carlo,
            :math:`\\mathbb E_q[\\log q(z|x) - \\log p(z)]`.
        kl_analytic: the same in closed form (``None`` if some latent site has no
            closed form in ``torch.distributions.kl_divergence``).
        elbo: reconstruction minus the KL (the closed form where there is one).
        reconstruction_se, kl_mc_se: Monte Carlo standard errors of the two estimates.
        log_evidence: the exact :math:`\\log p(x)`, if given.
        gap: ``log_evidence - elbo``.
        kl_posterior: :math:`\\mathrm{KL}(q(z|x)\\|p(z|x))`, computed from the exact
            posterior in closed form: by the identity it equals ``gap``.
        num_samples: the Monte Carlo draws per example.
    """

    reconstruction: torch.Tensor
    kl_mc: torch.Tensor
    kl_analytic: torch.Tensor | None
    elbo: torch.Tensor
    reconstruction_se: torch.Tensor
    kl_mc_se: torch.Tensor
    log_evidence: torch.Tensor | None
    gap: torch.Tensor | None
    kl_posterior: torch.Tensor | None
    num_samples: int

    def summary(self) -> dict[str, float | None]:
        """Means over the examples."""

        def mean(t):
            return None if t is None else float(t.mean())

        return {
            "reconstruction": mean(self.reconstruction),
            "kl_mc": mean(self.kl_mc),
            "kl_analytic": mean(self.kl_analytic),
            "elbo": mean(self.elbo),
            "log_evidence": mean(self.log_evidence),
            "gap": mean(self.gap),
            "kl_posterior": mean(self.kl_posterior),
        }


def _traces(model, guide, x, kwargs, num_samples, nesting):
    particles = pyro.plate(_PARTICLES, num_samples, dim=-(nesting + 1))
    with poutine.block():
        guide_trace = poutine.trace(particles(guide)).get_trace(x, **kwargs)
        model_trace = poutine.trace(poutine.replay(particles(model), trace=guide_trace)).get_trace(
            x, **kwargs
        )
    return prune_subsample_sites(model_trace), prune_subsample_sites(guide_trace)


def _closed_form_kl(model, guide, x, kwargs, n, plate_name):
    """Sum over latent sites of KL(q || p) per example, or None without a closed form."""
    with poutine.block():
        guide_trace = prune_subsample_sites(poutine.trace(guide).get_trace(x, **kwargs))
        model_trace = prune_subsample_sites(
            poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(x, **kwargs)
        )
    total = torch.zeros(n, dtype=x.dtype)
    for name, site in guide_trace.nodes.items():
        if site["type"] != "sample":
            continue
        try:
            kl = torch.distributions.kl_divergence(site["fn"], model_trace.nodes[name]["fn"])
        except NotImplementedError:
            return None
        frames = [f for f in site["cond_indep_stack"] if f.name == plate_name]
        if kl.dim() == 0 or not frames or kl.shape[0] != n:  # not a per-example latent
            return None
        total = total + kl.reshape(n, -1).sum(-1)
    return total


def _as_mvn(d: torch.distributions.Distribution) -> torch.distributions.MultivariateNormal:
    """A diagonal Normal (``.to_event(1)``) or a MultivariateNormal as a MultivariateNormal."""
    if isinstance(d, torch.distributions.MultivariateNormal):
        return d
    base = d.base_dist if isinstance(d, torch.distributions.Independent) else d
    if isinstance(base, torch.distributions.Normal) and d.event_shape and len(d.event_shape) == 1:
        return torch.distributions.MultivariateNormal(base.loc, scale_tril=torch.diag_embed(base.scale))
    raise ValueError(f"the guide's latent distribution {type(d).__name__} is not a Gaussian over a vector")


@torch.no_grad()
def elbo_decomposition(
    model,
    guide,
    x: torch.Tensor,
    *,
    num_samples: int = 100,
    exact=None,
    latent: str = "z",
    plate_name: str = "data",
    seed: int | None = 0,
    **kwargs,
) -> ELBODecomposition:
    r"""Each term of the ELBO of each example of ``x``.

    Args:
        model, guide: a pair with per-example latent sites inside ``pyro.plate(plate_name)``
            and one observed site family (e.g. ``vae.model, vae.guide``).
        x: data ``(N, ...)``.
        num_samples: Monte Carlo draws of z per example (one batched pass).
        exact: an object with ``log_prob(x)`` (the exact log evidence) and
            ``posterior(x) -> (loc, cov)`` (the exact Gaussian posterior of ``latent``),
            e.g. a :class:`pgen.models.PPCA`. Enables ``gap`` and ``kl_posterior``.
        latent: the name of the latent site the exact posterior is of.
        seed: seeds the draws (the global random state is left as it was).
        **kwargs: passed to model and guide.

    Example:
        >>> d = pgen.teach.elbo_decomposition(ppca.model, ppca.guide, x, exact=ppca)
        >>> d.summary()    # gap == kl_posterior within Monte Carlo error
    """
    x = check_data(x, name="x")
    num_samples = check_int("num_samples", num_samples, minimum=2)
    n = x.shape[0]
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(check_int("seed", seed, minimum=0))
        nesting = _max_plate_nesting(model, guide, (x,), kwargs)
        particle_dim = -(nesting + 1)
        model_trace, guide_trace = _traces(model, guide, x, kwargs, num_samples, nesting)
        kl_analytic = _closed_form_kl(model, guide, x, kwargs, n, plate_name)
        guide_for_posterior = None
        if exact is not None:
            with poutine.block():
                guide_for_posterior = poutine.trace(guide).get_trace(x, **kwargs).nodes[latent]["fn"]
    recon = torch.zeros(num_samples, n, dtype=x.dtype)
    log_prior = torch.zeros(num_samples, n, dtype=x.dtype)
    for site in model_trace.nodes.values():
        if site["type"] != "sample":
            continue
        part = _site_log_weight(site, particle_dim, plate_name, n).reshape(-1, n).expand(num_samples, n)
        if site["is_observed"]:
            recon = recon + part
        else:
            log_prior = log_prior + part
    log_q = torch.zeros(num_samples, n, dtype=x.dtype)
    for site in guide_trace.nodes.values():
        if site["type"] == "sample":
            log_q = log_q + _site_log_weight(site, particle_dim, plate_name, n).reshape(-1, n).expand(
                num_samples, n
            )
    kl_terms = log_q - log_prior
    root = math.sqrt(num_samples)
    reconstruction, kl_mc = recon.mean(0), kl_terms.mean(0)
    elbo = reconstruction - (kl_analytic if kl_analytic is not None else kl_mc)
    log_evidence = gap = kl_posterior = None
    if exact is not None:
        log_evidence = exact.log_prob(x).to(x.dtype)
        gap = log_evidence - elbo
        loc, cov = exact.posterior(x)
        posterior = torch.distributions.MultivariateNormal(loc, covariance_matrix=cov)
        kl_posterior = torch.distributions.kl_divergence(_as_mvn(guide_for_posterior), posterior)
    return ELBODecomposition(
        reconstruction=reconstruction,
        kl_mc=kl_mc,
        kl_analytic=kl_analytic,
        elbo=elbo,
        reconstruction_se=recon.std(0) / root,
        kl_mc_se=kl_terms.std(0) / root,
        log_evidence=log_evidence,
        gap=gap,
        kl_posterior=kl_posterior,
        num_samples=num_samples,
    )


@dataclass(frozen=True)
class IWAECurve:
    """The importance-weighted bound for each K, averaged over examples and repeats.

    Attributes:
        ks: the numbers of samples K.
        bounds: :math:`\\mathcal L_K` (nats per example), one per K.
        stderr: its Monte Carlo standard error (over repeats and examples).
        log_evidence: the exact mean :math:`\\log p(x)`, if given.
    """

    ks: list[int]
    bounds: list[float]
    stderr: list[float]
    log_evidence: float | None


@torch.no_grad()
def iwae_curve(
    model,
    guide,
    x: torch.Tensor,
    ks=(1, 2, 5, 10, 50, 100, 500),
    *,
    repeats: int = 20,
    exact=None,
    seed: int = 0,
    **kwargs,
) -> IWAECurve:
    r""":math:`\mathcal L_K` for each K in ``ks``: ``repeats`` independent K-sample
    estimates per example (one pass of ``repeats * max(ks)`` draws, cut into groups of
    K), averaged. With ``exact`` (an object with ``log_prob(x)``) the curve is drawn
    against the true :math:`\log p(x)`.
    """
    x = check_data(x, name="x")
    ks = [check_int("K", k, minimum=1) for k in ks]
    repeats = check_int("repeats", repeats, minimum=2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(check_int("seed", seed, minimum=0))
        log_w = log_weights(model, guide, x, num_samples=repeats * max(ks), model_kwargs=kwargs)
    bounds, errors = [], []
    for k in ks:
        groups = log_w[: repeats * k].reshape(repeats, k, -1)
        est = torch.logsumexp(groups, dim=1) - math.log(k)  # (repeats, N)
        per_repeat = est.mean(1)
        bounds.append(float(per_repeat.mean()))
        errors.append(float(per_repeat.std() / math.sqrt(repeats)))
    evidence = None if exact is None else float(exact.log_prob(x).mean())
    return IWAECurve(ks, bounds, errors, evidence)


def track_elbo_terms(
    model_obj,
    x: torch.Tensor,
    *,
    rounds: int = 10,
    steps: int | None = None,
    epochs: int | None = None,
    lr: float = 1e-2,
    num_samples: int = 50,
    exact=None,
    eval_data: torch.Tensor | None = None,
    seed: int = 0,
    progress: bool = False,
    **fit_kwargs,
) -> dict[str, list]:
    """Train a model object (an ``nn.Module`` with ``model`` and ``guide``, e.g. a PPCA
    or VAE) for ``rounds`` rounds of ``steps`` steps (default 100) or ``epochs`` epochs
    with ``pgen.fit``, and record :func:`elbo_decomposition`'s means on ``eval_data``
    (default ``x``) before the first round and after each round. With ``exact=True``
    the model object itself provides the exact evidence (PPCA).

    Each round is one ``pgen.fit`` call that continues from the module's current
    weights with a fresh Adam state; ``fit_kwargs`` (e.g. ``objective``,
    ``batch_size``) go to every call.

    Returns:
        ``{"step": [...], "epoch": [...] (or Nones), "reconstruction": [...], "kl": [...],
        "elbo": [...], "log_evidence": [...] (or Nones), "kl_posterior": [...] (or Nones)}``;
        ``step`` counts optimizer steps.
    """
    from ..inference import fit

    rounds = check_int("rounds", rounds, minimum=1)
    if steps is not None and epochs is not None:
        raise ValueError(f"give steps or epochs per round, not both (got steps={steps}, epochs={epochs})")
    if epochs is None:
        steps = check_int("steps", 100 if steps is None else steps, minimum=1)
    else:
        epochs = check_int("epochs", epochs, minimum=1)
    oracle = model_obj if exact is True else exact
    target = x if eval_data is None else eval_data
    history: dict[str, list] = {
        k: [] for k in ("step", "epoch", "reconstruction", "kl", "elbo", "log_evidence", "kl_posterior")
    }

    def record(step, epoch):
        d = elbo_decomposition(
            model_obj.model, model_obj.guide, target, num_samples=num_samples, exact=oracle, seed=seed
        )
        s = d.summary()
        history["step"].append(step)
        history["epoch"].append(epoch)
        history["reconstruction"].append(s["reconstruction"])
        history["kl"].append(s["kl_analytic"] if s["kl_analytic"] is not None else s["kl_mc"])
        history["elbo"].append(s["elbo"])
        history["log_evidence"].append(s["log_evidence"])
        history["kl_posterior"].append(s["kl_posterior"])

    record(0, None if epochs is None else 0)
    total = 0
    for r in range(rounds):
        result = fit(
            model_obj.model,
            model_obj.guide,
            x,
            steps=steps,
            epochs=epochs,
            lr=lr,
            seed=seed + r,
            progress=progress,
            **fit_kwargs,
        )
        total += result.num_steps
        record(total, None if epochs is None else (r + 1) * epochs)
    return history
