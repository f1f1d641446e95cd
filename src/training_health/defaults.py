"""Names and defaults the plugin's options show, importable without TensorFlow or NumPy.

The plugin loads in every pytest run of an environment where the package is installed: what it
imports at start-up must cost (almost) nothing.
"""

SEED_MODEL = "seed"  # --health-model's default: the built-in seed network
HEALTHY_INITS = ("truncated_normal", "glorot_uniform", "he_normal")  # the seed network's default grid
# The seed network's parameters (model/seed_network.py builds them): here so that the option check
# lists the grid's layers without importing TensorFlow (an xdist controller never trains).
SEED_PARAMETER_SHAPES = {
    "conv1/kernel": (5, 5, 1, 32),
    "conv1/bias": (32,),
    "conv2/kernel": (5, 5, 32, 64),
    "conv2/bias": (64,),
    "fc1/kernel": (7 * 7 * 64, 1024),
    "fc1/bias": (1024,),
    "out/kernel": (1024, 10),
    "out/bias": (10,),
}
