"""The figures of a trained run: its training curve and its family's figures."""

from __future__ import annotations

from pathlib import Path

from .. import families

__all__ = ["make_figures"]


def make_figures(run_dir: str | Path, m, cfg: dict, history: dict) -> list[Path]:
    """Write ``training.png`` and the family's figures into ``run_dir``; returns their paths."""
    from .. import plot

    run_dir = Path(run_dir)
    family = families.of_model(cfg["model"])
    monitor = cfg.get("monitor_test", False)
    written = []

    def save(figure, name):
        plot.save(figure, run_dir / name)
        written.append(run_dir / name)

    curve = plot.plot_training(
        history,
        title=f"{cfg['model']} on {cfg['data']['name']}",
        val_label="test (monitor only)" if monitor else "validation",
        ylabel=family.train_quantity,
    )
    save(curve, "training.png")
    for name, figure in family.figures(families.RunContext(run_dir, cfg, m)):
        save(figure, name)
    return written
