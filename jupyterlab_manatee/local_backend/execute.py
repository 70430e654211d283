"""The executor: one child process that runs one notebook, like the TEE's executor.

Upstream's executor runs ``jupyter nbconvert --execute --inplace --allow-errors`` in the
workspace. This does the same with nbclient: the notebook runs top to bottom in a fresh
kernel whose working directory is the workspace; a failing cell is recorded in the
output and the run continues. The executed notebook is written to ``--output``
atomically (temp file + rename).

Run as ``python -m jupyterlab_manatee.local_backend.execute --workspace DIR --notebook
NAME --output PATH [--kernel-name python3]``. The kernel's complete environment is read
as JSON ``{"env": {...}}`` from stdin (so secrets never appear on a command line).

Progress goes to the original stdout as JSON lines (``{"event": "started",
"kernel_pid": N}``, ``{"event": "error", "stage": ..., "message": ...}``,
``{"event": "done"}``); everything else (including anything the kernel process writes
to its inherited file descriptors) goes to stderr. Exit codes: see `protocol`.

The notebook's code runs as the executor's own user, in its child: first of all the
executor makes itself non-dumpable, so that code can neither ptrace it nor open its
/proc files (fd, mem, environ) to write to the progress channel, whose descriptor the
kernel does not inherit. The runner trusts no pid it reads there all the same.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from traitlets.config import Config

from jupyterlab_manatee.local_backend.protocol import (
    EXIT_BAD_INPUT,
    EXIT_EXECUTION_FAILED,
    EXIT_KERNEL_FAILED,
    EXIT_NOT_CONFINED,
    EXIT_OK,
    EXIT_ORPHANED,
)

_MAX_MESSAGE = 2000
_PR_SET_DUMPABLE = 4
_kernel_pid: int | None = None


class _Protocol:
    """JSON-lines progress channel on the original stdout."""

    def __init__(self) -> None:
        sys.stdout.flush()
        self._fd = os.dup(1)
        # From here on fd 1 is stderr: the kernel inherits it, and stray prints go there.
        os.dup2(2, 1)

    def emit(self, event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, **fields}) + "\n"
        os.write(self._fd, line.encode("utf-8"))


def _forbid_tracing() -> None:
    """Make this process non-dumpable (Linux; ``execve`` resets it, so not the kernel's).

    Processes of the same user may then not ptrace it nor open its /proc/<pid>/fd, mem
    or environ: the notebook's code cannot take over the executor or its pipes.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_DUMPABLE, 0): {os.strerror(errno)}")


def _kill_kernel() -> None:
    if _kernel_pid is None:
        return
    try:
        os.killpg(_kernel_pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _watch_parent() -> None:
    """Die (with the kernel) if the backend that started us goes away."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                _kill_kernel()
                os._exit(EXIT_ORPHANED)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run one notebook like the TEE executor.")
    parser.add_argument("--workspace", required=True, help="the unpacked workspace folder")
    parser.add_argument("--notebook", required=True, help="notebook file name in the workspace")
    parser.add_argument("--output", required=True, help="where to write the executed notebook")
    parser.add_argument("--kernel-name", default="python3", help="Jupyter kernel to run it in")
    return parser.parse_args(argv)


def _write_atomically(nb: Any, target: Path) -> None:
    import nbformat

    tmp = target.with_name(f".tmp-{uuid.uuid4().hex}-{target.name}")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            nbformat.write(nb, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _kernel_socket_folder() -> Path:
    """A private folder for the kernel's sockets, under /tmp (a socket's path must stay
    under 108 bytes, which the job's own temp folder may not)."""
    return Path(
        tempfile.mkdtemp(prefix="manatee-kernel-", dir="/tmp" if os.path.isdir("/tmp") else None)
    )


def _ipc_transport(sockets: Path) -> Config:
    """The kernel speaks over Unix sockets in ``sockets``, not TCP on 127.0.0.1.

    In the TEE one VM runs one job; here jobs share the machine's network, and TCP
    ports picked free by one executor can be taken by another's kernel before its own
    binds them (jupyter_client guards against that within one process only). Sockets in
    a folder of the job's own user are neither raced for nor reachable by other jobs.
    """
    config = Config()
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = str(sockets / "kernel")
    return config


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def main(argv: list[str] | None = None) -> int:
    """Run the notebook; returns the process exit code."""
    protocol = _Protocol()
    try:
        _forbid_tracing()
    except OSError as exc:
        protocol.emit("error", stage="input", message=f"cannot protect the executor: {exc}")
        return EXIT_NOT_CONFINED
    args = _parse_args(argv)
    _watch_parent()

    try:
        spec = json.loads(sys.stdin.read() or "{}")
        env = spec.get("env")
        if not isinstance(env, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in env.items()
        ):
            raise ValueError('stdin must be JSON {"env": {"NAME": "value", ...}}')
    except ValueError as exc:
        protocol.emit("error", stage="input", message=_short(exc))
        return EXIT_BAD_INPUT

    workspace = Path(args.workspace).resolve()
    output = Path(args.output).resolve()
    # Modules of the workspace must not shadow the executor's own imports.
    sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd(), str(workspace))]
    os.chdir(workspace)

    import nbformat
    from nbclient import NotebookClient

    try:
        nb = nbformat.read(workspace / args.notebook, as_version=4)
    except Exception as exc:
        protocol.emit("error", stage="input", message=f"cannot read the notebook: {_short(exc)}")
        return EXIT_BAD_INPUT

    started = False

    def on_start(**_: Any) -> None:
        global _kernel_pid
        nonlocal started
        started = True
        provisioner = getattr(client.km, "provisioner", None)
        _kernel_pid = getattr(provisioner, "pid", None)
        protocol.emit("started", kernel_pid=_kernel_pid)

    sockets = _kernel_socket_folder()
    client = NotebookClient(
        nb,
        config=_ipc_transport(sockets),
        kernel_name=args.kernel_name,
        timeout=None,
        allow_errors=True,
        shutdown_kernel="immediate",
        resources={"metadata": {"path": str(workspace)}},
        on_notebook_start=on_start,
    )
    try:
        asyncio.run(client.async_execute(env=env))
    except Exception as exc:
        _kill_kernel()
        stage = "execution" if started else "kernel"
        protocol.emit("error", stage=stage, message=_short(exc))
        return EXIT_EXECUTION_FAILED if started else EXIT_KERNEL_FAILED
    finally:
        shutil.rmtree(sockets, ignore_errors=True)

    try:
        _write_atomically(nb, output)
    except OSError as exc:
        protocol.emit("error", stage="output", message=f"cannot write the output: {_short(exc)}")
        return EXIT_EXECUTION_FAILED
    protocol.emit("done")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
