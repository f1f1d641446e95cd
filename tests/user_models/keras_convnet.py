"""Example user models for ``--model``: small Keras convnets, one healthy and one broken."""

import tensorflow as tf

KERAS_INITIALIZERS = {"default": "glorot_uniform", "glorot_uniform": "glorot_uniform", "he_normal": "he_normal"}


def _initializer(name: str, seed: int):
    if name not in KERAS_INITIALIZERS:
        raise ValueError(f"this example model knows {sorted(KERAS_INITIALIZERS)}, not {name!r}")
    return tf.keras.initializers.get({"class_name": KERAS_INITIALIZERS[name], "config": {"seed": seed}})


def _layers(initializer: str, seed: int, block_after_conv: bool):
    init = _initializer(initializer, seed)
    layers = [
        tf.keras.Input((28, 28, 1)),
        tf.keras.layers.Conv2D(8, 5, padding="same", activation="relu", kernel_initializer=init, name="conv"),
    ]
    if block_after_conv:
        layers.append(tf.keras.layers.Lambda(tf.stop_gradient, name="blocker"))
    layers += [
        tf.keras.layers.MaxPooling2D(4),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(10, kernel_initializer=init, name="logits"),
    ]
    return layers


def build(initializer: str, seed: int) -> tf.keras.Model:
    return tf.keras.Sequential(_layers(initializer, seed, block_after_conv=False))


def build_blocked(initializer: str, seed: int) -> tf.keras.Model:
    """A stop_gradient after the conv: its kernel and bias never receive a gradient."""
    return tf.keras.Sequential(_layers(initializer, seed, block_after_conv=True))
