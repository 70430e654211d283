"""What the backend and its executor child process agree on."""

from __future__ import annotations

#: ``python -m`` this module to run one notebook.
EXECUTOR_MODULE = "jupyterlab_manatee.local_backend.execute"

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_KERNEL_FAILED = 3
EXIT_EXECUTION_FAILED = 4
EXIT_ORPHANED = 5
#: The confinement step (``isolation``) could not set up the job's sandbox.
EXIT_NOT_CONFINED = 6
