"""Names and defaults the plugin's options show, importable without TensorFlow or NumPy.

The plugin loads in every pytest run of an environment where the package is installed: what it
imports at start-up must cost (almost) nothing.
"""

SEED_MODEL = "seed"  # --health-model's default: the built-in seed network
HEALTHY_INITS = ("truncated_normal", "glorot_uniform", "he_normal")  # the seed network's default grid
