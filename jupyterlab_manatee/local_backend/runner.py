"""Scheduling and running jobs, moving them through upstream's statuses.

A job waits in 0 (Created) until the reconciler starts its build, as upstream's does:
on its next look (every ``reconcile_interval`` seconds; 0 means at once, event-driven),
while it is not held (`JobRunner.hold`), and when one of ``max_running`` slots is free.
The build reads the creator's one workspace object as it is *then* (a later submit may
have replaced it: job A then builds B's files, as upstream). Then:
1 (unpack and prepare the workspace) -> 3 (starting the executor) -> 4 (Running, the
kernel is up) -> 5 (Finished: output and token published). As upstream, 5 only means
the executor stopped: a notebook missing from the top of the workspace, a kernel that
cannot start, an executor that crashes all end 5 without output or token (upstream's VM
stops and the reconciler sees it TERMINATED). Other failures keep a reason too: 2 when
the archive cannot be used as a workspace, 9 when the job cannot be launched (confined),
7 when it is still in progress ``job_timeout`` after its creation (upstream: 6 h, the
default). The notebook runs in
a child process (the ``execute`` module) in its own process group; a timeout or a stop
kills that group, and only processes the backend started or verified itself (see
`JobRunner._kill`): no pid the job reports is trusted. A delete does not kill: it is soft,
as upstream's (the run goes on untracked and still publishes its output).

A job never runs inside the data directory: its workspace, home and executed notebook
live in a per-job folder under `runs_root_for` (removed after the run), its environment
is built from an allow-list (none of the backend's secrets), and when the backend is root
the executor and kernel are confined, each job as a user of its own in namespaces of its
own (see `isolation`). The backend then collects the
executed notebook from that folder into the data directory's outputs.

Over 500 lines because a job's life (statuses, slots, timeouts, kills, publishing) is
one state machine whose transitions are read together.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from . import protocol
from .isolation import Confinement, IsolationError, JobIds
from .layout import DataLayout, atomic_write_bytes, fsync_dir, remove_tree, temp_path_for
from .store import (
    BUILD_FAILED,
    BUILDING,
    CREATED,
    FAILED,
    FINISHED,
    LAUNCH_FAILED,
    RUNNING,
    STARTING,
    JobRecord,
    JobStore,
)
from .tokens import TokenIssuer
from .unpack import Cancelled, UnpackError, unpack_workspace

log = logging.getLogger(__name__)
T = TypeVar("T")

#: The folder that holds the ``jupyterlab_manatee`` package, for the executor's imports.
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])
_LOG_TAIL_BYTES = 4096
#: The backend's environment variables a job gets (everything else may be a secret).
_PASSED_ENV = frozenset({"PATH", "LANG", "LANGUAGE", "TZ", "TERM"})
_PASSED_ENV_PREFIXES = ("LC_",)


@dataclass(frozen=True)
class JobInterpreter:
    """The Python that runs the executor and the notebook's kernel.

    ``paths`` are what it must read (prefixes, its ``sys.path``, this package), which a
    confined job is given read-only. The one place to swap the jobs' interpreter.
    """

    executable: str
    paths: tuple[Path, ...]
    #: Set for a stage-2 environment (`interpreter_for`): each job then runs in a venv of
    #: its own layered over these site-packages, so a notebook's ``%pip install`` lands in
    #: its own run (as in the TEE, a fresh VM each time), never in the shared environment.
    site_packages: tuple[str, ...] = ()
    base_executable: str = ""
    version: str = ""


def job_interpreter() -> JobInterpreter:
    """The backend's own interpreter (its venv has nbclient and ipykernel)."""
    paths = {sys.executable, sys.prefix, sys.base_prefix, sys.exec_prefix, _PACKAGE_PARENT}
    paths.update(entry for entry in sys.path if entry)
    return JobInterpreter(sys.executable, tuple(sorted(Path(p) for p in paths)))


_PROBE = (
    "import json, site, sys\n"
    "import ipykernel, nbclient, nbformat\n"
    "print(json.dumps({'paths': [sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path],"
    " 'site': site.getsitepackages(), 'base': getattr(sys, '_base_executable', sys.executable),"
    " 'version': '%d.%d' % sys.version_info[:2]}))"
)


def interpreter_for(python: str | Path) -> JobInterpreter:
    """Another environment's Python for the jobs, e.g. one made like the TEE's image (see
    `jupyterlab_manatee.workspace.tee_image`), so a notebook that fails there fails here too.

    The executor runs in it as well (upstream's executor is the image's own nbconvert): it
    must have ipykernel, nbclient and nbformat. ``python`` is used as given, not resolved
    (a venv's ``python`` is a link to the base interpreter).
    """
    executable = os.path.abspath(python)
    try:
        probe = subprocess.run(
            [executable, "-I", "-c", _PROBE], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ValueError(f"the stage-2 python {executable} cannot run: {exc}") from exc
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        raise ValueError(
            f"the stage-2 python {executable} cannot run jobs (it needs ipykernel, "
            f"nbclient and nbformat): {last}"
        )
    found = json.loads(probe.stdout)
    base = os.path.realpath(found["base"])
    paths = {executable, base, _PACKAGE_PARENT, *(entry for entry in found["paths"] if entry)}
    return JobInterpreter(
        executable,
        tuple(sorted(Path(p) for p in paths)),
        site_packages=tuple(found["site"]),
        base_executable=base,
        version=found["version"],
    )


def make_job_venv(interpreter: JobInterpreter, folder: Path) -> str:
    """A venv at ``folder`` over the stage-2 environment's site-packages; its python.

    Made by hand (pyvenv.cfg, a link to the base interpreter, a .pth file), in
    milliseconds: the job's pip (the environment's, found through the .pth) installs into
    the job's own site-packages and sees the image's packages as installed.
    """
    bin_dir = folder / "bin"
    site_dir = folder / "lib" / f"python{interpreter.version}" / "site-packages"
    bin_dir.mkdir(parents=True)
    site_dir.mkdir(parents=True)
    home = os.path.dirname(interpreter.base_executable)
    (folder / "pyvenv.cfg").write_text(
        f"home = {home}\ninclude-system-site-packages = false\nversion = {interpreter.version}\n"
    )
    # addsitedir, not a bare path: the environment's own .pth files (editable installs)
    # are processed as in the environment itself
    (site_dir / "tee-image.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in interpreter.site_packages)
    )
    python = bin_dir / "python"
    python.symlink_to(interpreter.base_executable)
    for alias in ("python3", f"python{interpreter.version}"):
        (bin_dir / alias).symlink_to("python")
    return str(python)


def runs_root_for(data_dir: Path) -> Path:
    """Where the jobs of the backend on ``data_dir`` run: outside it, one per data dir."""
    tag = hashlib.sha256(str(data_dir).encode("utf-8")).hexdigest()[:16]
    return Path(tempfile.gettempdir()).resolve() / f"manatee-local-runs-{tag}"


def prepare_runs_root(root: Path, isolated: bool) -> None:
    """Make ``root`` (ours, not a link: it sits in a shared temp folder) and empty it.

    Confined jobs may enter it (0711) but not list it; each finds only its own folder.
    """
    try:
        root.mkdir(mode=0o700)
    except FileExistsError:
        info = root.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            raise IsolationError(
                f"{root} exists and is not a folder of this user: refusing to run jobs there"
            ) from None
    os.chmod(root, 0o711 if isolated else 0o700)
    for entry in root.iterdir():  # left by a backend that stopped abruptly
        remove_tree(entry)


#: Upstream's time limit: a job in progress 6 hours after its creation fails (7).
DEFAULT_JOB_TIMEOUT = 6 * 3600.0


class NotebookMissing(Exception):
    """The workspace unpacked, but the notebook is not at its top (or is not one): the
    build succeeds upstream and its executor fails, so the job ends 5 without output."""


@dataclass(frozen=True)
class RunnerConfig:
    """How jobs are run."""

    max_running: int = 2
    job_timeout: float = DEFAULT_JOB_TIMEOUT
    kernel_name: str = "python3"
    max_unpacked_size: int = 4 * 6 * 1024**3
    stage2_env: dict[str, str] = field(default_factory=dict)
    stage2_data_dir: Path | None = None
    interpreter: JobInterpreter = field(default_factory=job_interpreter)
    #: Seconds between the reconciler's looks for jobs to build (upstream: ~10).
    reconcile_interval: float = 10.0
    #: The unpacked workspace may be at most this many times its archive's size.
    max_expansion_ratio: float = 20.0

    def unpack_limit(self, archive_size: int) -> int:
        """Bytes a workspace of ``archive_size`` may unpack to (a gzip bomb stops here)."""
        by_ratio = int(self.max_expansion_ratio * max(archive_size, MIN_EXPANSION_BASE))
        return min(self.max_unpacked_size, by_ratio)


#: Tiny archives may unpack to this many times 64 KiB (tar padding, small notebooks).
MIN_EXPANSION_BASE = 64 * 1024


@dataclass
class _JobContext:
    """What a running job holds that a kill must release."""

    uuid: str
    cancel: threading.Event = field(default_factory=threading.Event)
    proc: asyncio.subprocess.Process | None = None
    #: What the executor reported; used (unconfined only) once verified, see `_kill`.
    kernel_pid: int | None = None
    uid: int | None = None  # the job's own user, when confined
    started: bool = False  # moved past status 0: its archive is no longer needed after
    # The terminal status, written only once the job's files are cleaned up, so that a
    # client that sees a final status never sees the job's temporary files.
    outcome: tuple[int, str, dict[str, Any]] | None = None

    def end(self, status: int, reason: str = "", **extra: Any) -> None:
        self.outcome = (status, reason, extra)


def format_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def place_stage2_data(
    source: Path, workspace: Path, cancel: threading.Event | None = None
) -> tuple[list[str], list[str]]:
    """Copy every file under ``source`` into ``workspace`` at the same relative path.

    This is how a stage-2 run finds the real data where the notebook names it (e.g.
    ``data/insurance.csv.s2``), as a TEE finds it in its bucket. Files are copied, not
    linked, so a job cannot change the backend's originals; the copies go with the
    workspace. A path the submitted workspace already uses (a file, or a file where a
    folder is needed) is left alone: a submitted file is never overwritten. Returns the
    relative paths placed and skipped.
    """
    placed: list[str] = []
    skipped: list[str] = []
    if not source.is_dir():
        log.warning("the stage-2 data folder %s does not exist", source)
        return placed, skipped
    for folder, dirs, files in os.walk(source):  # folder symlinks are not followed
        dirs.sort()
        base = Path(folder).relative_to(source)
        for name in sorted(files):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            original = Path(folder) / name
            rel = (base / name).as_posix()
            if not original.is_file():  # a broken link, a fifo, a socket
                continue
            if _copy_new(original, workspace / rel, cancel):
                placed.append(rel)
            else:
                skipped.append(rel)
    return placed, skipped


def _copy_new(original: Path, target: Path, cancel: threading.Event | None) -> bool:
    """Copy ``original`` to ``target`` if nothing is there yet (never follows a link)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o444)
    except (FileExistsError, NotADirectoryError):
        return False
    try:
        with os.fdopen(fd, "wb") as out, original.open("rb") as src:
            while chunk := src.read(1024 * 1024):
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return True


class JobRunner:
    """Runs queued jobs, at most ``max_running`` at once."""

    def __init__(
        self,
        *,
        layout: DataLayout,
        store: JobStore,
        db: Callable[..., Awaitable[Any]],
        io_pool: Executor,
        tokens: TokenIssuer,
        config: RunnerConfig,
        runs_root: Path,
        confinement: Confinement,
    ) -> None:
        self._layout = layout
        self._runs_root = runs_root
        self._confinement = confinement
        self._ids = JobIds(confinement.ids) if confinement.ids is not None else None
        self._store = store
        self._db = db
        self._io_pool = io_pool
        self._tokens = tokens
        self._config = config
        self._queue: collections.deque[str] = collections.deque()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping = False
        self._open = asyncio.Event()  # cleared while builds are held
        self._open.set()
        self._wake = asyncio.Event()
        self._reconciler: asyncio.Task[None] | None = None

    # -- public ------------------------------------------------------------------------
    async def start(self) -> None:
        """Queue every job still in status 0, oldest first, and start the reconciler."""
        for job in await self._db(self._store.with_status, {CREATED}):
            self.enqueue(job.uuid)
        self._reconciler = asyncio.get_running_loop().create_task(
            self._reconcile(), name="manatee-reconciler"
        )

    def enqueue(self, job_uuid: str) -> None:
        """A new job in status 0: its build starts on the reconciler's next look."""
        if job_uuid not in self._queue and job_uuid not in self._tasks:
            self._queue.append(job_uuid)
        if self._config.reconcile_interval == 0:
            self._wake.set()

    def hold(self) -> None:
        """Start no build until `release` (jobs stay in status 0, their workspace unread)."""
        self._open.clear()

    def release(self) -> None:
        """Let builds start again, with a look at once."""
        self._open.set()
        self._wake.set()

    async def _reconcile(self) -> None:
        """Upstream's reconciler loop, for the 0 -> 1 step: look, start builds, wait."""
        interval = self._config.reconcile_interval
        while not self._stopping:
            await self._open.wait()
            self._wake.clear()
            self._pump()
            if interval == 0:
                await self._wake.wait()
            else:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), interval)

    async def cancel(self, job_uuid: str) -> None:
        """Stop a job (queued or running) and wait until its process is gone."""
        with contextlib.suppress(ValueError):
            self._queue.remove(job_uuid)
        task = self._tasks.get(job_uuid)
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    async def stop(self) -> None:
        """Kill every running job and wait for them; queued jobs stay in status 0."""
        self._stopping = True
        self._queue.clear()
        if self._reconciler is not None:
            self._reconciler.cancel()
            await asyncio.wait([self._reconciler])
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        if self._ids is not None:
            self._ids.close()

    @property
    def confinement(self) -> Confinement:
        return self._confinement

    @property
    def running(self) -> set[str]:
        return set(self._tasks)

    def run_dir(self, job_uuid: str) -> Path:
        """The job's own folder while it runs: workspace/, home/, tmp/, executed.ipynb."""
        return self._runs_root / job_uuid

    def _stage_dir(self, job_uuid: str) -> Path:
        """Root's empty folder the confinement step mounts through."""
        return self._runs_root / f".stage-{job_uuid}"

    # -- scheduling --------------------------------------------------------------------
    def _pump(self) -> None:
        """Start the oldest waiting jobs' builds, as many as there are free slots."""
        while (
            not self._stopping
            and self._open.is_set()
            and self._queue
            and len(self._tasks) < self._config.max_running
        ):
            job_uuid = self._queue.popleft()
            task = asyncio.get_running_loop().create_task(
                self._run(job_uuid), name=f"manatee-job-{job_uuid}"
            )
            self._tasks[job_uuid] = task
            task.add_done_callback(lambda _task, u=job_uuid: self._done(u))

    def _done(self, job_uuid: str) -> None:
        self._tasks.pop(job_uuid, None)
        if self._config.reconcile_interval == 0:
            self._wake.set()

    async def _set(self, job_uuid: str, status: int, reason: str = "", **extra: Any) -> None:
        await self._db(self._store.set_status, job_uuid, status, reason, **extra)

    async def _blocking(self, ctx: _JobContext, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` in a worker thread; if cancelled, signal it and wait for it to end."""
        future = asyncio.get_running_loop().run_in_executor(self._io_pool, fn, *args)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            ctx.cancel.set()
            await asyncio.wait([future])
            raise

    # -- one job -----------------------------------------------------------------------
    async def _run(self, job_uuid: str) -> None:
        job = await self._db(self._store.get_by_uuid, job_uuid)
        if job is None or job.job_status != CREATED:
            return
        ctx = _JobContext(job_uuid)
        timeout = self._config.job_timeout
        # Upstream's reconciler fails (7) any job still in progress this long after it
        # was created, however long it waited for its build.
        created = datetime.strptime(job.created_at, "%Y-%m-%d %H:%M:%S")
        deadline = created.replace(tzinfo=timezone.utc).timestamp() + timeout
        try:
            remaining = deadline - time.time()
            if remaining <= 0:
                raise asyncio.TimeoutError
            await asyncio.wait_for(self._execute(job, ctx), timeout=remaining)
        except asyncio.TimeoutError:
            log.info("job %s timed out after %s s", job_uuid, format_seconds(timeout))
            ctx.end(FAILED, f"timed out after {format_seconds(timeout)} s")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("job %s failed inside the backend", job_uuid)
            ctx.end(FAILED, f"internal error in the local backend: {exc}")
        finally:
            await self._kill(ctx)
            if ctx.started:
                # The workspace and archive are only needed while the job runs; a job
                # stopped by a stop is marked failed, so neither is needed again.
                cleanup = asyncio.get_running_loop().run_in_executor(
                    self._io_pool, self._cleanup_after_run, job_uuid, ctx.uid
                )
                await asyncio.wait([cleanup])
            if ctx.outcome is not None:
                status, reason, extra = ctx.outcome
                await self._set(job_uuid, status, reason, **extra)

    def _take_user(self, ctx: _JobContext) -> None:
        """A user of its own for the job, noted where the cleanup finds it even if the
        job is cancelled meanwhile."""
        assert self._ids is not None
        ctx.uid = self._ids.take()

    def _cleanup_after_run(self, job_uuid: str, uid: int | None) -> None:
        """The run's folders go, then its user is free for another job (its processes are
        all dead: `_kill` waited); the creator's workspace object stays, as upstream's."""
        remove_tree(self.run_dir(job_uuid))
        remove_tree(self._stage_dir(job_uuid))
        if uid is not None and self._ids is not None:
            self._ids.give_back(uid, self.run_dir(job_uuid))

    async def _execute(self, job: JobRecord, ctx: _JobContext) -> None:
        ctx.started = True
        await self._set(job.uuid, BUILDING)
        if self._ids is not None:
            try:
                await self._blocking(ctx, self._take_user, ctx)
            except (IsolationError, OSError) as exc:
                ctx.end(LAUNCH_FAILED, f"the job could not be confined: {exc}")
                return
        try:
            # The build reads the creator's workspace object now, whoever submitted it.
            handle, sha256, size = await self._blocking(ctx, self._read_workspace, job)
            try:
                await self._db(self._store.set_built_archive, job.uuid, sha256, size)
                job = dataclasses.replace(job, archive_sha256=sha256, archive_size=size)
                await self._blocking(ctx, self._prepare, job, handle, size, ctx.uid, ctx.cancel)
            finally:
                handle.close()
        except NotebookMissing as exc:
            # Upstream's build succeeds (it only copies files); the executor's nbconvert
            # then fails in the VM, which stops: 5, without output or token.
            log.info("job %s: %s", job.uuid, exc)
            ctx.end(FINISHED, f"the executor failed, no output: {exc}")
            return
        except UnpackError as exc:
            log.info("job %s: workspace refused: %s", job.uuid, exc)
            ctx.end(BUILD_FAILED, str(exc))
            return
        except Cancelled as exc:  # only after our own cancellation
            raise asyncio.CancelledError() from exc

        await self._set(job.uuid, STARTING)
        log_path = self._layout.executor_log(job.uuid)
        log_file = await self._blocking(ctx, open, log_path, "ab")
        try:
            run_dir = self.run_dir(job.uuid)
            command = self._confinement.wrap(
                self._executor_command(job, run_dir),
                uid=ctx.uid,
                run_dir=run_dir,
                stage=self._stage_dir(job.uuid),
            )
            try:
                ctx.proc = await asyncio.create_subprocess_exec(
                    *command,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=log_file,
                    cwd=str(run_dir),
                    env=self._executor_env(run_dir),
                    start_new_session=True,
                )
            except OSError as exc:
                ctx.end(LAUNCH_FAILED, f"cannot start the executor: {exc}")
                return
            error = await self._supervise(job, ctx)
            returncode = await ctx.proc.wait()
        finally:
            log_file.close()

        if returncode == protocol.EXIT_OK:
            md5 = await self._blocking(ctx, self._publish, job, ctx.uid)
            ctx.end(FINISHED, "", output_md5=md5)
            log.info("job %s finished", job.uuid)
            return
        detail = (error or {}).get("message") or await self._blocking(ctx, self._log_tail, log_path)
        # Upstream's executor is a VM: whatever stops it, the reconciler sees the VM
        # TERMINATED and the job ends 5 (Finished), without output or token. Only a job
        # that cannot be launched at all (here: not confined) is 9.
        if returncode == protocol.EXIT_NOT_CONFINED:
            ctx.end(LAUNCH_FAILED, f"the job could not be confined: {detail}")
            log.info("job %s could not be launched", job.uuid)
            return
        if returncode == protocol.EXIT_KERNEL_FAILED:
            reason = f"the kernel {self._config.kernel_name!r} could not start"
        elif returncode < 0:
            reason = f"the executor was killed by signal {-returncode}"
        else:
            reason = f"the executor failed (exit code {returncode})"
        ctx.end(FINISHED, f"{reason}, no output: {detail}" if detail else f"{reason}, no output")
        log.info("job %s: the executor failed (exit code %s)", job.uuid, returncode)

    async def _supervise(self, job: JobRecord, ctx: _JobContext) -> dict[str, Any] | None:
        """Send the environment, then follow the executor's progress lines until it exits."""
        assert ctx.proc is not None and ctx.proc.stdin is not None and ctx.proc.stdout is not None
        env = self._job_env(job, self.run_dir(job.uuid))
        payload = json.dumps({"env": env}).encode("utf-8")
        try:
            ctx.proc.stdin.write(payload)
            await ctx.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            ctx.proc.stdin.close()
        error: dict[str, Any] | None = None
        while line := await ctx.proc.stdout.readline():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            if event.get("event") == "started":
                pid = event.get("kernel_pid")
                # confined, a pid of the job's own PID namespace means nothing out here
                if not self._confinement.isolated and isinstance(pid, int) and pid > 1:
                    ctx.kernel_pid = pid
                await self._set(job.uuid, RUNNING)
            elif event.get("event") == "error":
                error = event
        return error

    async def _kill(self, ctx: _JobContext) -> None:
        """Kill the job, if still running, signalling only what the runner started itself.

        ``proc`` is the runner's own child (not reaped yet, so its pid is still its own),
        leading the process group it started. Confined, that group holds the executor,
        which is its PID namespace's init: killing it kills every process of the job.
        Unconfined, the kernel leads a group of its own, known only from the pid the
        executor reported, which the job side could have written: it is killed only if
        it is verifiably the executor's child leading its own group, checked while the
        executor is stopped (so it cannot reap the kernel and let its pid be reused).
        """
        proc = ctx.proc
        if proc is None or proc.returncode is not None:
            return
        if ctx.kernel_pid is not None and not self._confinement.isolated:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGSTOP)
            if leads_a_group_under(ctx.kernel_pid, proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(ctx.kernel_pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()

    # -- blocking steps (worker threads) -----------------------------------------------
    def _read_workspace(self, job: JobRecord) -> tuple[BinaryIO, str, int]:
        """Open the creator's workspace object as it is now (a later replace does not
        change what is open) and hash it: the token names what was built."""
        path = self._layout.workspace_archive(job.creator)
        try:
            handle = open(path, "rb")  # closed by the caller
        except FileNotFoundError:
            raise UnpackError(f"the workspace object of {job.creator!r} is missing") from None
        digest = hashlib.sha256()
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
        size = handle.tell()
        handle.seek(0)
        return handle, digest.hexdigest(), size

    def _prepare(
        self,
        job: JobRecord,
        archive: BinaryIO,
        archive_size: int,
        uid: int | None,
        cancel: threading.Event,
    ) -> None:
        """Unpack the archive into a fresh workspace and check the notebook is there.

        The workspace sits in the job's own folder outside the data directory (with the
        job's home and temp folders), which a confined job's own user ``uid`` owns.
        """
        import nbformat

        self._layout.job_dir(job.uuid).mkdir(mode=0o700, parents=True, exist_ok=True)
        run_dir = self.run_dir(job.uuid)
        remove_tree(run_dir)
        remove_tree(self._stage_dir(job.uuid))
        run_dir.mkdir(mode=0o700)
        for folder in ("home", "tmp"):
            (run_dir / folder).mkdir(mode=0o700)
        if self._confinement.isolated:
            self._stage_dir(job.uuid).mkdir(mode=0o700)
        workspace = run_dir / "workspace"
        unpack_workspace(
            archive,
            workspace,
            max_total_size=self._config.unpack_limit(archive_size),
            cancel=cancel,
        )
        notebook = workspace / job.jupyter_file_name
        # Upstream's image copies only the top of the workspace (its Dockerfile's
        # ``COPY <creator>-workspace/* ./``): a name with a folder is never found there.
        name = job.jupyter_file_name
        if not name or "/" in name or "\0" in name or not notebook.is_file():
            raise NotebookMissing(
                f"the notebook {job.jupyter_file_name!r} is not at the top of the workspace "
                "archive (it must sit directly in the archive's top-level folder)"
            )
        try:
            nbformat.read(notebook, as_version=4)
        except Exception as exc:
            raise NotebookMissing(
                f"{job.jupyter_file_name!r} is not a valid notebook: {exc}"
            ) from exc
        if self._config.stage2_data_dir is not None:
            placed, skipped = place_stage2_data(self._config.stage2_data_dir, workspace, cancel)
            log.info("job %s: %d stage-2 data file(s) placed", job.uuid, len(placed))
            for rel in skipped:
                log.warning(
                    "job %s: stage-2 data file %s not placed: the submitted workspace "
                    "already has something there",
                    job.uuid,
                    rel,
                )
        if self._config.interpreter.site_packages:
            make_job_venv(self._config.interpreter, run_dir / "python")
        if uid is not None:
            _chown_tree(run_dir, uid, uid)

    def _executor_command(self, job: JobRecord, run_dir: Path) -> list[str]:
        """The executor's command line (the job's interpreter; see `JobInterpreter`)."""
        interpreter = self._config.interpreter
        return [
            str(run_dir / "python" / "bin" / "python")
            if interpreter.site_packages
            else interpreter.executable,
            "-m",
            protocol.EXECUTOR_MODULE,
            "--workspace",
            str(run_dir / "workspace"),
            "--notebook",
            job.jupyter_file_name,
            "--output",
            str(run_dir / "executed.ipynb"),
            "--kernel-name",
            self._config.kernel_name,
        ]

    def _publish(self, job: JobRecord, uid: int | None) -> str:
        """Collect the executed notebook into the outputs, sign its MD5, write the token.

        The notebook must be a file of the job's own user ``uid`` (confined) or ours."""
        out_dir = self._layout.output_dir(job.uuid)
        out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        output = self._layout.root / self._layout.output_key(job.uuid, job.jupyter_file_name)
        owner = uid if uid is not None else os.geteuid()
        md5 = collect_output(self.run_dir(job.uuid) / "executed.ipynb", output, owner)
        token = self._tokens.issue(
            nonce=md5,
            archive_sha256=job.archive_sha256,
            creator=job.creator,
            job_uuid=job.uuid,
            env_override={item["key"]: item["value"] for item in job.envs},
        )
        token_path = self._layout.root / self._layout.token_key_for(job.uuid)
        atomic_write_bytes(token_path, token.encode("ascii"), mode=0o600)
        return md5

    @staticmethod
    def _log_tail(path: Path) -> str:
        """The last non-empty line of the executor's log, for a failure reason."""
        try:
            with path.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - _LOG_TAIL_BYTES))
                text = handle.read().decode("utf-8", "replace")
        except OSError:
            return ""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return lines[-1][:500] if lines else ""

    # -- environments ------------------------------------------------------------------
    @staticmethod
    def _base_env(run_dir: Path) -> dict[str, str]:
        """What every job process gets: an allow-list of the backend's variables (locale,
        PATH), never the rest (it may hold secrets), and a home and temp of its own."""
        env = {
            key: value
            for key, value in os.environ.items()
            if key in _PASSED_ENV or key.startswith(_PASSED_ENV_PREFIXES)
        }
        env["HOME"] = str(run_dir / "home")
        env["TMPDIR"] = str(run_dir / "tmp")
        return env

    def _job_env(self, job: JobRecord, run_dir: Path) -> dict[str, str]:
        """The kernel's environment: the allow-list, stage 2, the job's envs, the operator's."""
        env = self._base_env(run_dir)
        env["EXECUTION_STAGE"] = "2"
        # `!pip install` in a notebook would otherwise ask PyPI for pip's newest release and
        # leave "A new release of pip is available" in the output the user downloads
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        # Any key passes the API, as upstream's; one no environment can hold (empty, with
        # "=" or NUL) is left out rather than failing the kernel's start.
        env.update(
            {
                item["key"]: item["value"]
                for item in job.envs
                if item["key"]
                and "=" not in item["key"]
                and "\0" not in item["key"] + item["value"]
            }
        )
        env.update(self._config.stage2_env)
        if self._config.stage2_data_dir is not None:
            env["MANATEE_STAGE2_DATA_DIR"] = str(self._config.stage2_data_dir)
        return env

    def _executor_env(self, run_dir: Path) -> dict[str, str]:
        """The executor process's own environment: the allow-list, and this package."""
        env = self._base_env(run_dir)
        existing = os.environ.get("PYTHONPATH")
        env["PYTHONPATH"] = _PACKAGE_PARENT + (os.pathsep + existing if existing else "")
        return env


def collect_output(source: Path, output: Path, owner: int) -> str:
    """Copy the executed notebook ``source`` from a job's folder to ``output``; its MD5.

    The job's folder is the job's own, so ``source`` is opened without following a link
    and must be a regular file of the job's user ``owner`` with one name (not a link, nor
    a hard link, to a file of the backend's).
    """
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise RuntimeError("the executor reported success but wrote no output") from None
    except OSError as exc:
        raise RuntimeError(f"the executed notebook cannot be collected: {exc}") from exc
    digest = hashlib.md5()
    tmp = temp_path_for(output)
    with os.fdopen(fd, "rb") as src:
        info = os.fstat(src.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != owner or info.st_nlink != 1:
            raise RuntimeError("the executed notebook is not a plain file of the job's own")
        try:
            with open(tmp, "xb") as out:
                os.chmod(tmp, 0o600)
                while chunk := src.read(1024 * 1024):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, output)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    fsync_dir(output.parent)
    return digest.hexdigest()


def leads_a_group_under(pid: int, parent: int) -> bool:
    """Whether process ``pid`` is a child of ``parent`` and leads its own process group
    (Linux /proc; False when it is gone or unreadable)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat_line = handle.read()
    except OSError:
        return False
    # after the command name, which may hold spaces and parentheses: state ppid pgrp
    fields = stat_line[stat_line.rfind(b")") + 2 :].split()
    try:
        return int(fields[1]) == parent and int(fields[2]) == pid
    except (IndexError, ValueError):
        return False


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    """Give the confined job's user everything under ``root`` (never following links)."""
    os.lchown(root, uid, gid)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.lchown(os.path.join(folder, name), uid, gid)
