"""Figures draw exactly the data they are given."""

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pgen import plot  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _constant_images(n, side=3):
    return torch.arange(n, dtype=torch.float32)[:, None].expand(n, side * side) / max(n, 1)


def test_image_grid_places_images_row_by_row_with_blank_padding():
    grid = plot.image_grid(_constant_images(5), nrow=3)
    assert grid.shape == (2 * 3 + 1, 3 * 3 + 2)
    np.testing.assert_allclose(grid[0:3, 4:7], 1 / 5, rtol=1e-6)  # image 1: row 0, column 1
    np.testing.assert_allclose(grid[4:7, 4:7], 4 / 5, rtol=1e-6)  # image 4: row 1, column 1
    assert np.isnan(grid[3, 0]) and np.isnan(grid[0, 3])  # padding
    assert np.isnan(grid[4:7, 8:11]).all()  # the empty sixth slot
    with pytest.raises(ValueError, match="not square; pass image_shape"):
        plot.image_grid(torch.zeros(2, 6))
    assert plot.image_grid(torch.zeros(2, 6), image_shape=(2, 3)).shape == (2, 7)
    with pytest.raises(ValueError, match="holds 4 pixels, not 6"):
        plot.image_grid(torch.zeros(2, 6), image_shape=(2, 2))


def test_colour_images_stored_as_rgb_planes_tile_with_white_padding():
    planes = torch.zeros(2, 3, 2, 2)
    planes[0, 0] = 1.0  # image 0 red
    planes[1, 2] = 1.0  # image 1 blue
    grid = plot.image_grid(planes.reshape(2, -1), image_shape=(3, 2, 2))
    assert grid.shape == (2, 5, 3)
    np.testing.assert_array_equal(grid[0, 0], [1, 0, 0])
    np.testing.assert_array_equal(grid[1, 4], [0, 0, 1])
    np.testing.assert_array_equal(grid[:, 2], 1.0)  # the padding column is white
    np.testing.assert_array_equal(plot.image_grid(planes), grid)  # (n, C, H, W) needs no image_shape
    with pytest.raises(ValueError, match="1 or 3 channels"):
        plot.image_grid(torch.zeros(2, 8), image_shape=(2, 2, 2))


def test_plot_images_shows_the_grid():
    images = torch.rand(7, 16)
    ax = plot.plot_images(images, nrow=4, title="t")
    np.testing.assert_allclose(ax.images[0].get_array().filled(np.nan), plot.image_grid(images, nrow=4))
    assert ax.get_title() == "t"


def test_reconstructions_and_interpolations_are_laid_out_in_rows():
    a, b = torch.zeros(4, 9), torch.ones(4, 9)
    grid = plot.plot_reconstructions(a, b).images[0].get_array()
    assert np.all(grid[:3] == 0) and np.all(grid[4:] == 1)
    path = torch.stack([torch.linspace(0, 1, 5)[:, None].expand(5, 9)] * 2)  # 2 strips of 5
    grid = plot.plot_interpolation(path).images[0].get_array()
    assert grid.shape == (7, 19)
    np.testing.assert_allclose(grid[0, ::4][:5], np.linspace(0, 1, 5))
    with pytest.raises(ValueError, match="differ in shape"):
        plot.plot_reconstructions(a, torch.ones(3, 9))


def test_manifold_ticks_give_the_latent_coordinates():
    ax = plot.plot_latent_manifold(torch.rand(5, 5, 4), extent=2.0)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["-2.0", "0.0", "2.0"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["2.0", "0.0", "-2.0"]  # z2 upwards
    assert ax.get_xlabel() == "z1" and ax.get_ylabel() == "z2"


def test_latent_scatter_projects_on_principal_components():
    rng = np.random.default_rng(0)
    t = rng.normal(size=200)
    z = np.stack([t, 2 * t, -t, 0.01 * rng.normal(size=200)], 1)  # one dominant direction
    points, labels = plot.project_2d(z)
    assert labels[0].startswith("PC 1 (100%")
    assert points[:, 0].var() > 1e3 * points[:, 1].var()
    y = (t > 0).astype(int)
    ax = plot.plot_latent_scatter(z, y)
    assert len(ax.collections) == 2 and ax.get_legend() is not None
    both = np.concatenate([c.get_offsets() for c in ax.collections])
    np.testing.assert_allclose(np.sort(both[:, 0]), np.sort(points[:, 0]))
    two = plot.plot_latent_scatter(z[:, :2])
    assert two.get_xlabel() == "z1"
    with pytest.raises(ValueError, match="3 labels for 200 points"):
        plot.plot_latent_scatter(z, y[:3])


def test_training_curve_plots_the_history():
    history = {
        "epoch": list(range(1, 13)),
        "train_elbo": [-300.0, -150.0] + [-100.0 + i for i in range(10)],
        "val_elbo": [None, None] + [-110.0 + i for i in range(10)],
    }
    ax = plot.plot_training(history, val_label="test (monitor only)")
    train, val = ax.get_lines()
    np.testing.assert_allclose(train.get_ydata(), history["train_elbo"])
    np.testing.assert_allclose(val.get_xdata(), range(3, 13))
    assert val.get_label() == "test (monitor only)"
    lo, hi = ax.get_ylim()
    assert lo > -150 and hi < -80  # the first epochs do not flatten the curve


def test_save_writes_a_png(tmp_path):
    ax = plot.plot_images(torch.rand(4, 4))
    plot.save(ax, tmp_path / "sub" / "grid.png")
    image = plt.imread(tmp_path / "sub" / "grid.png")
    assert image.ndim == 3 and image.shape[0] > 50


def test_conditional_grid_and_inpainting_figures():
    samples = torch.rand(3, 4, 9)
    ax = plot.plot_conditional_grid(samples, row_labels=["a", "b", "c"])
    assert ax.images[0].get_array().shape == (3 * 3 + 2, 4 * 3 + 3)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="row_labels has 2 entries for 3 rows"):
        plot.plot_conditional_grid(samples, row_labels=["a", "b"])
    images = torch.ones(2, 9)
    mask = torch.tensor([True, False] * 4 + [True])
    ax = plot.plot_inpainting(images, mask, torch.zeros(2, 3, 9))
    grid = np.ma.getdata(ax.images[0].get_array())
    assert grid.shape == (2 * 3 + 1, 5 * 3 + 4)  # input, 3 completions, truth
    np.testing.assert_allclose(grid[0, 0:3], [1.0, 0.5, 1.0])  # hidden pixels shown grey
    np.testing.assert_allclose(grid[0:3, 16:19], 1.0)  # the truth, last
    with pytest.raises(ValueError, match=r"mask has shape \(4,\); expected \(9,\)"):
        plot.plot_inpainting(images, mask[:4], torch.zeros(2, 3, 9))


def test_rate_distortion_and_score_histograms():
    ax = plot.plot_rate_distortion([1.0, 3.0], [20.0, 17.0], betas=[4, 1])
    x, y = ax.lines[0].get_data()
    np.testing.assert_allclose(x, [1.0, 3.0]) and np.testing.assert_allclose(y, [20.0, 17.0])
    assert len(ax.lines) == 4  # the curve and three lines of equal ELBO
    for line in ax.lines[1:]:
        lx, ly = line.get_data()
        np.testing.assert_allclose(lx + ly, lx[0] + ly[0])  # D + R constant along each
    ax = plot.plot_score_histograms({"in": np.zeros(5), "out": -np.ones(5)})
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["in", "out"]
    ax = plot.plot_score_histograms({"in": np.zeros(5), "far": np.full(3, -1e4)}, range=(-10, 1))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["in", "far: off the chart (mean -1e+04)"]
