"""``python -m pgen``: the command line (also under ``torchrun ... -m pgen train ...``)."""

import sys

from .cli import main

sys.exit(main())
