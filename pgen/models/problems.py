"""Named Bayesian problems: a model with its data, ready for :func:`pgen.sample`,
:func:`pgen.fit` or :func:`pgen.compare` (``pgen compare PROBLEM``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..checks import check_choice
from .bayes import (
    CorrelatedGaussian,
    EightSchools,
    GaussianPosterior,
    LinearRegression,
    LogisticRegression,
    RandomWalk,
)

__all__ = ["BayesProblem", "PROBLEMS", "problem"]


@dataclass
class BayesProblem:
    """A model with its data, ready for :func:`pgen.sample`, :func:`pgen.fit` or
    :func:`pgen.compare`.

    Attributes:
        name: the problem's name.
        model: the Pyro model.
        args: the model's positional arguments (its data).
        description: one line on what it is.
        exact: the exact posterior where known, else ``None``.
        log_evidence: the exact log evidence where known.
        reference: where NUTS on the model itself is not a trustworthy reference (the
            centred eight schools' funnel), ``f(seed, draws, progress) -> (draws, label)``
            giving reference draws of the same posterior another way.
    """

    name: str
    model: Callable
    args: tuple
    description: str
    exact: GaussianPosterior | None = None
    log_evidence: float | None = None
    kwargs: dict = field(default_factory=dict)
    reference: Callable | None = None


def _noncentred_reference(seed: int, draws: int, progress: bool):
    """Eight schools' posterior by NUTS on the non-centred form (4 chains), in the centred
    form's parameters (mu, tau, theta): NUTS on the centred funnel is itself biased."""
    import warnings

    from ..inference.mcmc import sample

    nc = problem("eight_schools_noncentered")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        run = sample(
            nc.model,
            *nc.args,
            chains=4,
            warmup=1000,
            draws=draws,
            seed=seed + 1000,
            jit=True,
            progress=progress,
            log_likelihood=False,
            **nc.kwargs,
        )
    label = (
        f"NUTS on the non-centred form, 4 chains x {draws} draws "
        f"(min bulk ESS {run.min_ess_bulk:.0f}, {run.divergences} divergences)"
    )
    return {k: run.draws_of(k) for k in ("mu", "tau", "theta")}, label


PROBLEMS = (
    "linreg",
    "logreg",
    "eight_schools",
    "eight_schools_noncentered",
    "random_walk",
    "correlated_gaussian",
)


def problem(name: str, *, seed: int = 0) -> BayesProblem:
    """A named :class:`BayesProblem`: one of :data:`PROBLEMS`.

    ``linreg``: 50 points, 3 uncentred covariates (exact posterior and evidence);
    ``logreg``: breast cancer (569 x 30, standardized); ``eight_schools`` and
    ``eight_schools_noncentered``; ``random_walk``: 20 steps (exact posterior);
    ``correlated_gaussian``: 2-D, correlation 0.9 (exact).
    """
    name = check_choice("problem", name, PROBLEMS)
    if name == "linreg":
        m = LinearRegression()
        from ..data.tabular import synthetic_regression

        x, y, _ = synthetic_regression(50, 3, seed=seed)
        return BayesProblem(
            name,
            m.model,
            (x,),
            "conjugate linear regression, 50 x 3 uncentred covariates",
            m.exact_posterior(x, y),
            m.log_evidence(x, y),
            {"y": y},
        )
    if name == "logreg":
        from ..data.tabular import breast_cancer

        x, y = breast_cancer()
        m = LogisticRegression()
        return BayesProblem(
            name, m.model, (x,), "logistic regression, breast cancer 569 x 30", kwargs={"y": y}
        )
    if name.startswith("eight_schools"):
        from ..data.tabular import eight_schools

        sigma, y = eight_schools()
        m = EightSchools(centered=name == "eight_schools")
        kind = "centred" if m.centered else "non-centred"
        reference = _noncentred_reference if m.centered else None
        return BayesProblem(
            name, m.model, (sigma,), f"eight schools, {kind}", kwargs={"y": y}, reference=reference
        )
    if name == "random_walk":
        m = RandomWalk()
        y = RandomWalk.simulate(20, seed=seed)
        return BayesProblem(
            name, m.model, (y,), "Gaussian random walk in noise, 20 steps", m.exact_posterior(y)
        )
    m = CorrelatedGaussian()
    return BayesProblem(name, m.model, (), "2-D Gaussian, correlation 0.9", m.exact_posterior())
