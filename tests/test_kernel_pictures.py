"""Kernel pictures: valid PNGs, one shared colour scale, and the min/max view's blindness measured."""

import zlib

import numpy as np

from training_health.report.kernel_pictures import grey_level_change, tiles, write_kernel_pictures


def test_png_files_are_valid(tmp_path):
    before = np.random.default_rng(0).standard_normal((5, 5, 1, 32)).astype(np.float32)
    for path in write_kernel_pictures("conv1/kernel", before, before * 1.01, tmp_path):
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
        length = int.from_bytes(data[33:37], "big")
        zlib.decompress(data[41 : 41 + length])  # the image data inflates


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
