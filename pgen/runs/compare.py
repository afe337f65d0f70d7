"""``pgen compare``: VI and MCMC on a named Bayesian problem against a reference, with
the tables written as each method finishes and the figures at the end."""

from __future__ import annotations

from pathlib import Path

from .. import io
from ..inference.compare import Comparison, _check_methods, compare
from ..models.bayes import problem

__all__ = ["compare_problem"]


def _write_tables(result: Comparison, out: Path, description: str) -> None:
    result.to_csv(out / "table.csv")
    text = f"{description}; reference: {result.reference}\n\n{result.to_markdown()}\n"
    (out / "table.md").write_text(text)


def compare_problem(
    name: str,
    *,
    out: str | Path | None = None,
    methods: str = "nuts,meanfield,fullrank,flow",
    reference: str | None = None,
    seed: int = 0,
    chains: int = 4,
    warmup: int = 500,
    draws: int = 1000,
    steps: int = 3000,
    guide_init: str = "mode",
    reference_draws: int = 2500,
    progress: bool = True,
    device=None,
) -> tuple[Comparison, Path, str]:
    """Compare ``methods`` on the problem ``name`` (:func:`pgen.models.bayes.problem`).

    The reference is the exact posterior where known, else NUTS (for the centred eight
    schools, NUTS on the non-centred form). ``table.csv``, ``table_parameters.csv`` and
    ``table.md`` are rewritten after each method, so an interrupted comparison keeps the
    rows it finished; ``marginals.png``, ``pairs.png`` and ``error_vs_time.png`` follow.

    Returns:
        ``(comparison, out folder, the problem's description)``.
    """
    from .. import plot

    pr = problem(name, seed=seed)
    _check_methods(methods)
    reference = reference or ("exact" if pr.exact is not None else "nuts")
    if reference not in ("exact", "nuts"):
        raise ValueError(f"reference must be 'exact' or 'nuts'; got {reference!r}")
    out = io.check_writable(Path(out or f"runs/compare-{name}"), what="--out")
    ref_draws, ref_label = reference, None
    if reference == "nuts" and pr.reference is not None:
        ref_draws, ref_label = pr.reference(seed, reference_draws, progress)

    def write(partial: Comparison) -> None:
        if ref_label is not None:
            partial.reference = ref_label
        _write_tables(partial, out, pr.description)

    result = compare(
        pr.model,
        *pr.args,
        methods=methods,
        reference=ref_draws,
        seed=seed,
        exact=pr.exact,
        chains=chains,
        warmup=warmup,
        draws=draws,
        steps=steps,
        guide_init=guide_init,
        device=device,
        reference_options={"draws": reference_draws},
        progress=progress,
        on_result=write,
        **pr.kwargs,
    )
    write(result)
    plot.save(plot.plot_marginals(result), out / "marginals.png")
    if len(result.draws["reference"]) >= 2:
        plot.save(plot.plot_pair(result), out / "pairs.png")
    plot.save(plot.plot_error_vs_time(result), out / "error_vs_time.png")
    return result, out, pr.description
