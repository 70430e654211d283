"""``python -m jupyterlab_manatee.provision``: the same as ``manatee-provision``."""

import sys

from .cli import main

sys.exit(main())
