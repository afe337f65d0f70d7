r"""Minibatch scaling of the data plate.

The model must put its per-example sites inside ``pyro.plate("data", len(x))`` (the
plate name is ``plate_name``). For a minibatch of ``B`` of ``N`` examples, every sample
site inside that plate has its log-density multiplied by ``N / B``, in the model and in
the guide, while sites outside the plate (global latent variables) are left alone. The
step's objective is then an unbiased estimate of the full-data objective, just as with
``pyro.plate(..., subsample=...)``.
"""

from __future__ import annotations

from collections.abc import Callable

from pyro.poutine.messenger import Messenger

__all__ = ["scale_data_plate", "check_plates", "ScaledPair"]


class _DataPlateScale(Messenger):
    """Multiply the log-density of every sample site inside the data plate by ``scale``
    (and of every other sample site by ``outside``)."""

    def __init__(self, plate_name: str, scale: float, outside: float = 1.0):
        super().__init__()
        self.plate_name = plate_name
        self.scale = scale
        self.outside = outside

    def _process_message(self, msg):
        if msg["type"] != "sample":
            return
        if any(frame.name == self.plate_name for frame in msg["cond_indep_stack"]):
            msg["scale"] = self.scale * msg["scale"]
        elif self.outside != 1.0:
            msg["scale"] = self.outside * msg["scale"]


def scale_data_plate(fn: Callable, scale: float, plate_name: str = "data", outside: float = 1.0) -> Callable:
    """Wrap a model or guide so sites inside ``pyro.plate(plate_name)`` are scaled by
    ``scale`` and the others by ``outside``.

    This is how :func:`pgen.fit` turns a minibatch of ``B`` examples into an estimate of
    the objective on all ``N`` (``scale = N / B``); a data-parallel fit over ``W`` ranks
    also divides the sites outside the data plate by ``W`` on each rank
    (:mod:`pgen.inference.svi.distributed`).
    """
    if scale == 1.0 and outside == 1.0:
        return fn
    return _DataPlateScale(plate_name, float(scale), float(outside))(fn)


class ScaledPair:
    """Model and guide wrapped for minibatches of each size, made once per size."""

    def __init__(self, model: Callable, guide: Callable, n: int, plate_name: str, ranks: int = 1):
        self.model, self.guide, self.n, self.plate_name = model, guide, n, plate_name
        self.ranks = ranks  # a data-parallel fit's ranks: training pairs divide global terms by it
        self._cache: dict = {}

    def __call__(
        self, batch: int, n: int | None = None, *, training: bool = False
    ) -> tuple[Callable, Callable]:
        """The pair for a minibatch of ``batch`` examples (the global minibatch in a
        data-parallel fit) of ``n``; ``training`` divides global terms over the ranks."""
        outside = 1.0 / self.ranks if training else 1.0
        key = (batch, n or self.n, outside)
        pair = self._cache.get(key)
        if pair is None:
            scale = (n or self.n) / batch
            pair = self._cache[key] = (
                scale_data_plate(self.model, scale, self.plate_name, outside),
                scale_data_plate(self.guide, scale, self.plate_name, outside),
            )
        return pair


def check_plates(model_trace, guide_trace, *, batch: int, n: int, plate: str) -> None:
    """Minibatches (``batch < n``) need every per-example site in the data plate, of the
    minibatch's size, and every observed site inside it."""
    if batch == n:
        return
    sizes = {
        frame.size
        for trace in (model_trace, guide_trace)
        for site in trace.nodes.values()
        if site["type"] == "sample"
        for frame in site["cond_indep_stack"]
        if frame.name == plate
    }
    if not sizes:
        raise ValueError(
            f"batch_size={batch} < {n} examples needs the model's per-example sites "
            f"inside pyro.plate({plate!r}, len(x)) so each minibatch is scaled to the full "
            f"data; this model has no plate named {plate!r}. Name its data plate "
            f"{plate!r}, pass plate_name=, or use batch_size=None (full batch)"
        )
    if sizes != {batch}:
        raise ValueError(
            f"pyro.plate({plate!r}) has size {sorted(sizes)} but the minibatch has "
            f"{batch} examples: the engine minibatches for you, so write "
            f"pyro.plate({plate!r}, len(x)) without subsample_size"
        )
    outside = [
        name
        for name, site in model_trace.nodes.items()
        if site["type"] == "sample"
        and site["is_observed"]
        and not any(f.name == plate for f in site["cond_indep_stack"])
    ]
    if outside:
        raise ValueError(
            f"observed site(s) {outside} lie outside pyro.plate({plate!r}), so minibatching "
            "would not scale them; put them inside the data plate or use batch_size=None"
        )
