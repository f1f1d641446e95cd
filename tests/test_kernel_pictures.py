"""Kernel figures: one valid PNG per kernel, one shared colour scale, the amplified difference
with its factor, and the min/max view's blindness measured."""

import zlib

import numpy as np
import pytest

from training_health.probe.training_probe import ProbeConfig
from training_health.report.kernel_pictures import (
    grey_level_change,
    kernel_figure,
    tiles,
    write_kernel_figure,
    write_trajectory_pictures,
)


def png_chunks(data: bytes):
    at = 8
    while at < len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        yield data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        at += 12 + length


def test_png_file_is_valid(tmp_path):
    before = np.random.default_rng(0).standard_normal((5, 5, 1, 32)).astype(np.float32)
    path = write_kernel_figure("conv1/kernel", before, before * 1.01, tmp_path, "ctx")
    data = path.read_bytes()
    assert path.name == "conv1-kernel.png" and data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 800 and height >= 500
    zlib.decompress(b"".join(chunk for kind, chunk in png_chunks(data) if kind == b"IDAT"))  # the pixels inflate


def test_figure_shares_one_scale_and_names_the_amplification():
    rng = np.random.default_rng(3)
    before = rng.standard_normal((5, 5, 1, 32))
    after = before + 0.01 * rng.standard_normal(before.shape)
    figure = kernel_figure("conv1/kernel", before, after, "he_normal-cpu-graph-seed0-30steps (30 steps)")
    images = [ax.images[0] for ax in figure.axes if ax.images]
    limit = max(np.abs(before).max(), np.abs(after).max())
    assert [im.get_clim() for im in images[:3]] == [(-limit, limit)] * 3  # before, after, difference
    diff_limit = np.abs(after - before).max()
    amplified = [ax for ax in figure.axes if "amplified" in ax.get_title()]
    assert len(amplified) == 1 and f"x{limit / diff_limit:.3g}" in amplified[0].get_title()
    assert amplified[0].images[0].get_clim() == (-diff_limit, diff_limit)
    title = figure._suptitle.get_text()
    assert "he_normal-cpu-graph-seed0-30steps (30 steps)" in title and "conv1/kernel" in title
    assert f"{np.linalg.norm(after - before) / np.linalg.norm(before):.3g}" in title
    labels = " ".join(ax.get_xlabel() for ax in figure.axes)
    assert "grey levels on average" in labels and "of the scale" in labels


def test_minmax_view_hides_a_uniform_rescale_completely():
    """Scaling every weight by 1.1 (a 10% change) moves no pixel of the min/max view."""
    before = np.random.default_rng(1).standard_normal((5, 5, 1, 32))
    change = grey_level_change(before, before * 1.1)
    assert change["max"] == 0 and change["pixels_changed"] == 0


def test_minmax_view_shows_a_real_change():
    rng = np.random.default_rng(2)
    before = rng.standard_normal((5, 5, 1, 32))
    change = grey_level_change(before, before + rng.standard_normal(before.shape))
    assert change["mean"] > 20


def test_tiles_lay_out_every_filter():
    mosaic = tiles(np.arange(5 * 5 * 32, dtype=float).reshape(5, 5, 1, 32))
    assert mosaic.shape == (4 * 6 + 1, 8 * 6 + 1) and np.sum(~np.isnan(mosaic)) == 800


@pytest.mark.parametrize("initializer", ["seed_normal", "he_normal"])
def test_real_run_writes_one_figure_per_conv_kernel_and_the_dynamics(
    health_trajectories, health_thresholds, initializer, tmp_path
):
    traj = health_trajectories.get(ProbeConfig(initializer=initializer))
    paths = write_trajectory_pictures(traj, tmp_path, thresholds=health_thresholds)
    assert [p.name for p in paths] == ["conv1-kernel.png", "conv2-kernel.png", "dynamics.png"]
    assert all(p.stat().st_size > 20_000 for p in paths)
