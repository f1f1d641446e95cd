"""``python -m training_health``: the main job (see ``training_health.cli``)."""

import sys

from training_health.cli import main

sys.exit(main())
