"""Figures (matplotlib). Each ``plot_x(data, *, ax=None, **kw)`` returns the Axes.

Imported on first use (``pgen.plot``), so ``import pgen`` does not load matplotlib.
"""

from .calibrate import plot_ranks
from .compare import plot_error_vs_time, plot_marginals, plot_pair
from .diffusion import plot_diffusion_terms
from .energy import (
    energy_grid,
    plot_ais_convergence,
    plot_ais_trace,
    plot_chain_snapshots,
    plot_energy_landscape,
    plot_rbm_filters,
    plot_score_field,
)
from .images import (
    image_grid,
    plot_conditional_grid,
    plot_images,
    plot_inpainting,
    plot_interpolation,
    plot_latent_manifold,
    plot_reconstructions,
    plot_samples_over_training,
)
from .latent import (
    plot_latent_scatter,
    plot_points,
    plot_rate_distortion,
    plot_score_histograms,
    plot_training,
    project_2d,
)
from .teach import (
    plot_divergence_fits,
    plot_elbo_terms,
    plot_gaussian_approximations,
    plot_gradient_variance,
    plot_iwae_curve,
    plot_mean_field,
    plot_posterior_collapse,
    plot_rate_distortion_sweep,
    plot_score_matching,
)

__all__ = [
    "image_grid",
    "plot_images",
    "plot_reconstructions",
    "plot_interpolation",
    "plot_latent_manifold",
    "plot_conditional_grid",
    "plot_inpainting",
    "plot_samples_over_training",
    "plot_latent_scatter",
    "plot_points",
    "plot_training",
    "plot_rate_distortion",
    "plot_score_histograms",
    "project_2d",
    "plot_marginals",
    "plot_pair",
    "plot_ranks",
    "plot_error_vs_time",
    "plot_elbo_terms",
    "plot_iwae_curve",
    "plot_mean_field",
    "plot_score_matching",
    "plot_gradient_variance",
    "plot_divergence_fits",
    "plot_gaussian_approximations",
    "plot_rate_distortion_sweep",
    "plot_posterior_collapse",
    "plot_diffusion_terms",
    "energy_grid",
    "plot_energy_landscape",
    "plot_score_field",
    "plot_chain_snapshots",
    "plot_rbm_filters",
    "plot_ais_trace",
    "plot_ais_convergence",
    "save",
]


def save(ax_or_fig, path, *, dpi: int = 120) -> None:
    """Save the figure of ``ax_or_fig`` as a PNG (folders created) and close it."""
    from pathlib import Path

    import matplotlib.pyplot as plt

    fig = getattr(ax_or_fig, "figure", ax_or_fig)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
