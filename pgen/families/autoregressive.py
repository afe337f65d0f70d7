"""The autoregressive family: MADE and PixelCNN (:mod:`pgen.models.autoregressive`).

Like the flow family, trained on the exact log-likelihood (the ELBO of a model without
latent variables) and evaluated by it; its images are dequantized grey levels by default
(``--binarize threshold`` for binary images). Besides sample grids it draws prefix
completions: the top rows of test images kept, the rest drawn from the model.
"""

from __future__ import annotations

import torch

from .. import plot
from .base import RunContext, register
from .flow import FlowFamily
from .options import Option

__all__ = ["AutoregressiveFamily"]


@register
class AutoregressiveFamily(FlowFamily):
    name = "autoregressive"
    sample_options = (
        Option(
            "given_rows",
            "autoregressive: keep the top GIVEN_ROWS rows of the first N test images and draw "
            "the rest (prefix completion); default: draw whole images.",
            None,
            int,
        ),
    )

    def figures(self, run: RunContext):
        yield from super().figures(run)
        if run.is_image:
            rows = run.meta.image_shape[0] // 2
            yield "completions.png", self._completions(run, n=8, given_rows=rows, seed=0)[1]

    def _completions(self, run: RunContext, *, n: int, given_rows: int, seed: int):
        m, (rows, cols) = run.model, run.meta.image_shape
        if not 0 <= given_rows <= rows:
            raise ValueError(f"given_rows must be between 0 and the image's {rows} rows; got {given_rows}")
        x = run.split("test").x[:n]
        done = m.complete(x, given_rows * cols, seed=seed)
        shown_given = m.from_levels(m.to_levels(x)).clone()
        shown_given[:, given_rows * cols :] = 0.5
        stack = torch.cat([m.from_levels(m.to_levels(x)), shown_given, done])
        title = f"test images, their top {given_rows} rows, completions"
        return done, plot.plot_images(stack, nrow=len(x), image_shape=(rows, cols), title=title)

    def sample(self, run: RunContext, *, n: int, seed: int, given_rows: int | None = None, **options):
        if given_rows is None:
            return super().sample(run, n=n, seed=seed)
        if not run.is_image:
            raise ValueError("given_rows is for image data (it keeps the top rows of test images)")
        return self._completions(run, n=n, given_rows=given_rows, seed=seed)
