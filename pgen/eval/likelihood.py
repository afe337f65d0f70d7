r"""Likelihood evaluation for any model/guide pair with per-example latent variables.

The importance-sampling estimate of the marginal likelihood of one example, with
:math:`z_1..z_K \sim q(z|x)`,

.. math::
    \log \hat p_K(x) = \log \frac1K \sum_{k=1}^K \frac{p(x, z_k)}{q(z_k | x)},

is the IWAE bound (Burda et al. 2016): :math:`\mathbb{E}[\log \hat p_K(x)]` increases
with :math:`K`, equals the ELBO at :math:`K=1` and tends to :math:`\log p(x)` from below.
It is computed with a log-sum-exp, in one batched pass per chunk of samples.

The weights use each site's actual log-density: scale factors (a beta-VAE's KL weight,
minibatch scaling) are training devices and are ignored, so the numbers are those of
the model as a probability distribution.
"""

from __future__ import annotations

import contextlib
import math

import pyro
import torch
from pyro import poutine
from pyro.distributions.util import scale_and_mask
from pyro.poutine.util import prune_subsample_sites
from tqdm.auto import tqdm

from .. import rng
from ..checks import check_int
from ..data.validate import check_data, check_labels, check_same_length
from ..devices import resolve_device, to_device

__all__ = ["log_weights", "log_likelihood", "elbo", "bits_per_dim"]

_PARTICLES = "_pgen_particles"
_CHUNK = 2**15  # samples x examples per batched pass


def _max_plate_nesting(model, guide, args, kwargs) -> int:
    with poutine.block(), torch.random.fork_rng(devices=[]):
        guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
    dims = [
        frame.dim
        for trace in (model_trace, guide_trace)
        for site in trace.nodes.values()
        if site["type"] == "sample"
        for frame in site["cond_indep_stack"]
        if frame.vectorized
    ]
    return -min(dims) if dims else 0


def _site_log_weight(site, particle_dim: int, plate_name: str, n: int) -> torch.Tensor:
    """This site's log-density summed to shape (K or 1, n or 1)."""
    frames = [f for f in site["cond_indep_stack"] if f.name == plate_name]
    if not frames:
        kind = "observed" if site["is_observed"] else "latent"
        raise ValueError(
            f"{kind} site {site['name']!r} is outside pyro.plate({plate_name!r}); a per-example "
            "likelihood needs every latent and observed site inside the data plate (global "
            "latent variables have no per-example likelihood)"
        )
    data_dim = frames[0].dim
    log_p = site["fn"].log_prob(site["value"])
    log_p = scale_and_mask(log_p, mask=site["mask"])
    if not torch.is_tensor(log_p):
        return torch.as_tensor(float(log_p))
    rank = -particle_dim
    if log_p.dim() < rank:
        log_p = log_p.reshape((1,) * (rank - log_p.dim()) + log_p.shape)
    drop = [d for d in range(-log_p.dim(), 0) if d not in (particle_dim, data_dim)]
    if drop:
        log_p = log_p.sum(dim=drop)
    if log_p.shape[-1] not in (1, n):
        raise ValueError(
            f"site {site['name']!r} has {log_p.shape[-1]} entries along pyro.plate({plate_name!r}) "
            f"but there are {n} examples"
        )
    return log_p


def log_weights(
    model,
    guide,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    num_samples: int,
    plate_name: str = "data",
    model_kwargs: dict | None = None,
    _nesting: int | None = None,
) -> torch.Tensor:
    r"""Per-example log importance weights :math:`\log p(x, z_k) - \log q(z_k|x)`.

    The ``num_samples`` draws run as one batched pass inside an outer
    ``pyro.plate`` left of the model's plates, so the model must broadcast over a
    leading batch dimension (pgen's models do).

    Returns:
        Tensor of shape ``(num_samples, len(x))``.
    """
    num_samples = check_int("num_samples", num_samples, minimum=1)
    kwargs = dict(model_kwargs or {})
    if y is not None:
        kwargs["y"] = y
    n = x.shape[0]
    nesting = _max_plate_nesting(model, guide, (x,), kwargs) if _nesting is None else _nesting
    particle_dim = -(nesting + 1)
    particles = pyro.plate(_PARTICLES, num_samples, dim=particle_dim)
    try:
        with poutine.block():
            guide_trace = poutine.trace(particles(guide)).get_trace(x, **kwargs)
            model_trace = poutine.trace(poutine.replay(particles(model), trace=guide_trace)).get_trace(
                x, **kwargs
            )
    except (RuntimeError, ValueError) as error:
        raise ValueError(
            f"running the model and guide with {num_samples} samples in one batched pass "
            f"(pyro.plate at dim {particle_dim}) failed: {error}. The model must broadcast "
            "over a leading batch dimension."
        ) from error
    total = torch.zeros(num_samples, n, dtype=x.dtype)
    model_trace, guide_trace = (
        prune_subsample_sites(model_trace),
        prune_subsample_sites(guide_trace),
    )
    for trace, sign in ((model_trace, 1.0), (guide_trace, -1.0)):
        for site in trace.nodes.values():
            if site["type"] == "sample":
                total = total + sign * _site_log_weight(site, particle_dim, plate_name, n)
    return total


def _batches(x, y, batch_size):
    for start in range(0, len(x), batch_size):
        yield (
            start,
            x[start : start + batch_size],
            None if y is None else y[start : start + batch_size],
        )


def _prepare(model, x, y):
    """The engine's checks of the data, then the model's own (``validate_data`` of the
    module whose method ``model`` is), as :func:`pgen.fit` makes them."""
    x = check_data(x, name="x")
    if y is not None:
        if torch.is_tensor(y) and y.is_floating_point():
            y = check_data(y, name="y", min_rank=1)
        else:
            y = check_labels(y, name="y")
        check_same_length(x=x, y=y)
    validate_data = getattr(getattr(model, "__self__", None), "validate_data", None)
    if validate_data is not None:
        validate_data(x, y, name="x")
    return x, y


def _finite(values: torch.Tensor, what: str) -> torch.Tensor:
    """``values``, or a ``ValueError`` naming the examples whose estimate is not finite."""
    bad = ~torch.isfinite(values)
    if bool(bad.any()):
        first = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"the {what} of {int(bad.sum())} example(s) is not finite (the first: x[{first}], "
            f"{values[first].item()}): the model gives those data no density, e.g. values far outside "
            "what it was built for, or its parameters are broken"
        )
    return values


def _log_weight_chunks(model, guide, xb, yb, num_samples, plate_name, model_kwargs, nesting):
    chunk = max(1, _CHUNK // len(xb))
    parts = []
    for k0 in range(0, num_samples, chunk):
        k = min(chunk, num_samples - k0)
        parts.append(
            log_weights(
                model,
                guide,
                xb,
                yb,
                num_samples=k,
                plate_name=plate_name,
                model_kwargs=model_kwargs,
                _nesting=nesting,
            )
        )
    return torch.cat(parts, dim=0)


def _batched_log_weights(
    model, guide, x, y, num_samples, batch_size, seed, plate_name, model_kwargs, progress, device=None
):
    """Check the arguments, then yield the ``(num_samples, batch)`` log-weights of each
    batch of examples, drawn with ``seed`` without touching the global random state
    (a GPU's included). With ``device``, model and guide modules and ``model_kwargs``
    move there, and each batch is moved as it is evaluated."""
    num_samples = check_int("num_samples", num_samples, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    x, y = _prepare(model, x, y)
    if seed is not None:
        seed = check_int("seed", seed, minimum=0)
    if device is not None:
        device = resolve_device(device)
        model_kwargs = to_device(model_kwargs, device)
        for fn in (model, guide):
            module = getattr(fn, "__self__", None)
            if isinstance(module, torch.nn.Module):
                module.to(device)
    kwargs = dict(model_kwargs or {})
    with rng.forked(seed) if seed is not None else contextlib.nullcontext(), torch.no_grad():
        nesting = None
        for _, xb, yb in tqdm(list(_batches(x, y, batch_size)), disable=not progress, desc="log p(x)"):
            if device is not None:
                xb, yb = xb.to(device), None if yb is None else yb.to(device)
            if nesting is None:
                nesting = _max_plate_nesting(
                    model, guide, (xb,), kwargs if yb is None else {**kwargs, "y": yb}
                )
            yield _log_weight_chunks(model, guide, xb, yb, num_samples, plate_name, model_kwargs, nesting)


def log_likelihood(
    model,
    guide,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    num_samples: int = 1000,
    batch_size: int = 100,
    seed: int | None = 0,
    plate_name: str = "data",
    model_kwargs: dict | None = None,
    return_stderr: bool = False,
    progress: bool = False,
    device=None,
):
    r"""Importance-sampled :math:`\log p(x)` of each example (the IWAE bound with K samples).

    Args:
        model, guide: a Pyro model/guide pair whose latent variables are per example
            (inside ``pyro.plate(plate_name)``), e.g. ``vae.model, vae.guide``.
        x: data ``(N, ...)``; ``y`` optional labels or conditioning passed as ``y=``.
        num_samples: K, importance samples per example.
        batch_size: examples per pass (samples are chunked to bound memory).
        seed: seed for these draws (the global random state is left as it was);
            ``None`` uses the current random state.
        plate_name: the model's data plate.
        model_kwargs: extra keyword arguments for model and guide.
        return_stderr: also return each estimate's Monte Carlo standard error, by the
            delta method: :math:`\sqrt{(K \sum_k \tilde w_k^2 - 1)/K}` with
            :math:`\tilde w` the normalized weights (it understates the error when the
            weights are heavy-tailed).
        progress: show a progress bar over batches.
        device: where to compute (``"cpu"``, ``"cuda"``, ``"auto"``, ...;
            :func:`pgen.devices.resolve_device`): the modules of ``model`` and ``guide``
            move there, and ``x`` goes there a batch at a time. ``None``: where they are.

    Returns:
        Tensor ``(N,)`` of estimates in nats, or ``(estimates, stderr)``, on the device
        they were computed on.

    Example:
        >>> ll = pgen.eval.log_likelihood(vae.model, vae.guide, x_test, num_samples=1000)
        >>> ll.mean()
    """
    estimates, errors = [], []
    for log_w in _batched_log_weights(
        model, guide, x, y, num_samples, batch_size, seed, plate_name, model_kwargs, progress, device
    ):
        estimates.append(torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0]))
        if return_stderr:
            w = torch.softmax(log_w, dim=0)
            k = log_w.shape[0]
            errors.append(torch.sqrt(torch.clamp(k * (w**2).sum(0) - 1.0, min=0.0) / k))
    estimates = _finite(torch.cat(estimates), "log-likelihood")
    return (estimates, torch.cat(errors)) if return_stderr else estimates


def elbo(
    model,
    guide,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    num_samples: int = 1,
    batch_size: int = 100,
    seed: int | None = 0,
    plate_name: str = "data",
    model_kwargs: dict | None = None,
    device=None,
) -> torch.Tensor:
    r"""The ELBO of each example, :math:`\mathbb{E}_q[\log p(x,z) - \log q(z|x)]`,
    averaged over ``num_samples`` draws. Same arguments as :func:`log_likelihood`.

    Returns:
        Tensor ``(N,)`` in nats.
    """
    batches = _batched_log_weights(
        model, guide, x, y, num_samples, batch_size, seed, plate_name, model_kwargs, False, device
    )
    return _finite(torch.cat([log_w.mean(0) for log_w in batches]), "ELBO")


def bits_per_dim(nll, dims: int, levels: int | None = None):
    r"""Convert a negative log-likelihood in nats per example to bits per dimension.

    .. math::
        \mathrm{bpd} = \frac{\mathrm{nll} + D \log(\mathrm{levels})}{D \log 2}.

    Args:
        nll: negative log-likelihood in nats per example (float or tensor).
        dims: D, the number of dimensions of one example (784 for MNIST).
        levels: ``None`` when ``nll`` is already a discrete likelihood (e.g. a Bernoulli
            model of binary pixels). For a density on data dequantized to
            ``(k + u) / levels`` in [0, 1), the number of discrete levels: the
            :math:`D \log(\mathrm{levels})` term converts it to the discrete scale
            (Theis et al. 2016), giving an upper bound on the discrete bits/dim.
    """
    dims = check_int("dims", dims, minimum=1)
    shift = 0.0 if levels is None else dims * math.log(check_int("levels", levels, minimum=2))
    return (nll + shift) / (dims * math.log(2.0))
