"""This repository's tests use the installed plugin (entry point ``training_health``), as a user's would.

Options, fixtures and the grid live in ``src/training_health/plugin.py``. This file only marks
the repository root, which pytest then puts on ``sys.path`` so that ``fixtures/`` (baselines,
negative-control models, example user models) imports as a plain folder of test material.
"""
