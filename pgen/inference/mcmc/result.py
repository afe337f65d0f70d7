"""What :func:`pgen.sample` returns, its summary table and its warnings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...eval.arviz import flat_parameters
from ...eval.diagnostics import ess_bulk, ess_tail, rhat

__all__ = ["MCMCResult", "summarize", "convergence_warnings", "rejection_warnings"]


@dataclass(frozen=True, repr=False)
class MCMCResult:
    """What :func:`sample` returns.

    Attributes:
        samples: posterior draws by site, constrained, ``(chain, draw, *site_shape)``.
        sample_stats: per-draw sampler statistics ``(chain, draw)``: ``diverging``,
            ``step_size``, ``tree_depth``, ``n_steps`` (leapfrog steps),
            ``acceptance_rate``, ``energy`` and ``lp`` (log density of the unconstrained
            draw, Jacobian included), as far as the kernel reports them.
        inference_data: ``arviz.InferenceData`` with ``posterior``, ``sample_stats``,
            ``log_likelihood`` and ``observed_data`` (and ``posterior_predictive`` on
            request), built with ``arviz.from_dict``.
        summary: a ``pandas.DataFrame`` with one row per scalar parameter: mean, sd,
            5%/50%/95% quantiles, ``ess_bulk``, ``ess_tail``, ``r_hat``.
        wall_time: seconds for warm-up and draws of all chains (elapsed; parallel chains
            overlap).
        warmup_time, sampling_time: the two parts, summed over chains.
        ess_per_second: the smallest bulk ESS over parameters divided by ``wall_time``.
        divergences: post-warm-up divergent transitions, over all chains.
        warnings: the plain-language warnings that were issued.
        chains, warmup, draws: the run's size.
        seeds: the seed of each chain.
        kernel: the kernel's name.
        config: the settings of the run.
        partial: True if the run stopped early (Ctrl-C, or a chain failed): the result
            holds the chains that finished.
        stop_reason: why it stopped early, or ``None``.
        rejections: ``{reason: count}`` of the points where the model's log density or
            its gradient could not be computed; each was rejected as a divergence (Stan's
            rule) and sampling went on.
    """

    samples: dict[str, np.ndarray]
    sample_stats: dict[str, np.ndarray]
    inference_data: Any
    summary: Any
    wall_time: float
    warmup_time: float
    sampling_time: float
    ess_per_second: float
    divergences: int
    warnings: list[str]
    chains: int
    warmup: int
    draws: int
    seeds: list[int]
    kernel: str
    config: dict = field(default_factory=dict)
    partial: bool = False
    stop_reason: str | None = None
    rejections: dict = field(default_factory=dict)

    def draws_of(self, name: str) -> np.ndarray:
        """The draws of site ``name`` with chains pooled: ``(chain * draw, *shape)``."""
        if name not in self.samples:
            raise KeyError(f"no site {name!r}; sites: {sorted(self.samples)}")
        value = self.samples[name]
        return value.reshape(-1, *value.shape[2:])

    @property
    def min_ess_bulk(self) -> float:
        return float(np.nanmin(self.summary["ess_bulk"].to_numpy()))

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}{tuple(v.shape[2:]) if v.ndim > 2 else ''}" for k, v in self.samples.items())
        rhat = self.summary["r_hat"].to_numpy() if len(self.summary) else np.array([])
        worst = f"{np.nanmax(rhat):.3f}" if np.isfinite(rhat).any() else "n/a"
        size = f"{self.chains} chains x {self.draws} draws after {self.warmup} warm-up"
        if self.partial:
            size = f"PARTIAL ({self.stop_reason}): {size}"
        return (
            f"MCMCResult({self.kernel}: {size}, "
            f"{self.wall_time:.1f} s; min bulk ESS {self.min_ess_bulk:.0f}, max R-hat {worst}, "
            f"{self.divergences} divergences; sites: {shapes}; .summary has the table)"
        )


def summarize(samples: dict[str, np.ndarray]):
    """A ``pandas.DataFrame`` of per-parameter summaries of ``(chain, draw, ...)`` draws."""
    import pandas as pd

    rows = {}
    for name, x in flat_parameters(samples).items():
        x = np.asarray(x, dtype=np.float64)
        flat = x.reshape(-1)
        q5, q50, q95 = np.quantile(flat, [0.05, 0.5, 0.95])
        enough = x.shape[1] >= 4
        rows[name] = {
            "mean": flat.mean(),
            "sd": flat.std(ddof=1) if flat.size > 1 else float("nan"),
            "q5": q5,
            "q50": q50,
            "q95": q95,
            "ess_bulk": ess_bulk(x) if enough else float("nan"),
            "ess_tail": ess_tail(x) if enough else float("nan"),
            "r_hat": rhat(x) if enough else float("nan"),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def convergence_warnings(
    summary, divergences: int, chains: int, draws: int, max_depth_hits: int = 0
) -> list[str]:
    """Plain-language warnings from a summary table (R-hat, ESS) and divergences."""
    messages = []
    rh = summary["r_hat"]
    bad = rh[rh > 1.01]
    if len(bad):
        worst = bad.sort_values(ascending=False)
        names = ", ".join(f"{k} ({v:.3f})" for k, v in list(worst.items())[:5])
        messages.append(
            f"R-hat is above 1.01 for {len(bad)} parameter(s): {names}. The chains have not "
            "mixed: they disagree about the posterior. Run longer (more warmup and draws) or "
            "reparameterize the model."
        )
    needed = 100 * chains
    for column, kind in (("ess_bulk", "bulk"), ("ess_tail", "tail")):
        ess = summary[column]
        low = ess[ess < needed]
        if len(low):
            names = ", ".join(f"{k} ({v:.0f})" for k, v in list(low.sort_values().items())[:5])
            messages.append(
                f"{kind} ESS is below {needed} (100 per chain) for {len(low)} parameter(s): "
                f"{names}. Estimates of posterior "
                f"{'means and medians' if kind == 'bulk' else 'quantiles and intervals'} are "
                "unreliable; draw more samples."
            )
    if divergences:
        messages.append(
            f"{divergences} divergent transition(s) after warm-up: the sampler met curvature "
            "it cannot follow (e.g. a funnel in a hierarchical model), so the draws may miss "
            "part of the posterior. Reparameterize (e.g. non-centred) or raise target_accept."
        )
    if max_depth_hits:
        messages.append(
            f"{max_depth_hits} of {chains * draws} transitions stopped at the maximum tree "
            "depth: trajectories were cut short, which makes sampling slow; raise "
            "max_tree_depth or improve the geometry."
        )
    return messages


def rejection_warnings(rejections: dict, after_warmup: int) -> list[str]:
    """A plain-language warning for the points where the model could not be evaluated
    (``after_warmup`` of them after warm-up)."""
    total = sum(rejections.values())
    if not total:
        return []
    reasons = "; ".join(
        f"{reason} ({count})" for reason, count in sorted(rejections.items(), key=lambda kv: -kv[1])[:3]
    )
    return [
        f"{total} evaluation(s) of the model's log density or gradient failed ({after_warmup} after "
        "warm-up) and were rejected as divergences (infinite energy), and sampling went on. Reasons: "
        f"{reasons}. Where the sampler meets them after warm-up, the posterior may be cut off there: "
        "reparameterize or bound the parameters (e.g. a scale that underflows to 0, a covariance "
        "that stops being positive definite)."
    ]
