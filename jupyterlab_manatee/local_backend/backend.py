"""`LocalBackend`: the whole ManaTEE API on this machine, as one object.

It owns the data directory (locked against a second backend), the job store, the URL
signer, the token issuer, the job runner and the HTTP server. ``await start()`` serves in
the running event loop; `running_in_thread` serves on its own thread for synchronous
callers. A restart on the same data directory keeps every finished job, output and
token; jobs that were running when the backend stopped are marked failed (7) with the
reason `INTERRUPTED_REASON` (they are not resumed: a half-run notebook may have had
side effects), and jobs still waiting (0) are run.

Faithful to the real API (manatee-api.md, section 5): one workspace object per creator,
replaced by each submit and read by a job's build only when the reconciler starts it
(every ``reconcile_interval`` seconds; `hold_builds` holds every build until
`release_builds`, for deterministic tests); pages in id order; soft delete. Closed by
default: see `access`.

Over 500 lines because this is the one object that owns the backend's resources and
their start, restart and stop order; the work itself is in the modules it wires together.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import itertools
import logging
import os
import socket
import threading
import uuid as uuid_module
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, TypeVar

import tornado.httpserver
import tornado.netutil

from .access import AccessPolicy, is_loopback, load_or_create_token, save_token
from .app import make_app
from .isolation import DEFAULT_JOB_IDS, Confinement
from .isolation import plan as plan_confinement
from .layout import TMP_PREFIX, DataLayout, remove_tree
from .runner import (
    DEFAULT_JOB_TIMEOUT,
    JobRunner,
    RunnerConfig,
    interpreter_for,
    job_interpreter,
    prepare_runs_root,
    runs_root_for,
)
from .signing import UrlSigner
from .store import (
    BUILDING,
    FAILED,
    MAX_IN_PROGRESS_PER_CREATOR,
    RUNNING,
    STARTING,
    JobRecord,
    JobStore,
)
from .tokens import DEFAULT_AUDIENCE, Deployment, TokenIssuer

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)
T = TypeVar("T")

INTERRUPTED_REASON = "interrupted: the backend stopped while the job was running"
#: JSON request bodies are small; only the submit route takes large bodies.
MAX_JSON_BODY = 1024 * 1024


class DataDirInUse(RuntimeError):
    """Another backend already serves this data directory."""


class LocalBackend:
    """The ManaTEE API (section 1 of the contract) served from a local data directory."""

    def __init__(
        self,
        data_dir: str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        public_url: str | None = None,
        max_running: int = 2,
        job_timeout: float = DEFAULT_JOB_TIMEOUT,
        max_archive_size: int = 6 * 1024**3,
        stage2_env: dict[str, str] | None = None,
        stage2_data_dir: str | Path | None = None,
        audience: str = DEFAULT_AUDIENCE,
        kernel_name: str = "python3",
        deployment: Deployment | None = None,
        token: str | None = None,
        allowed_hosts: Iterable[str] = (),
        reconcile_interval: float = 10.0,
        max_expansion_ratio: float = 20.0,
        stage2_python: str | Path | None = None,
        job_ids: range = DEFAULT_JOB_IDS,
    ) -> None:
        if max_running < 1:
            raise ValueError("max_running must be at least 1")
        if len(job_ids) < max_running:
            raise ValueError("job_ids must hold at least max_running ids (one per running job)")
        if job_timeout <= 0:
            raise ValueError("job_timeout must be positive")
        if max_archive_size <= 0:
            raise ValueError("max_archive_size must be positive")
        if not 0 <= port <= 65535:
            raise ValueError("port must be between 0 and 65535")
        if reconcile_interval < 0:
            raise ValueError("reconcile_interval must not be negative")
        if max_expansion_ratio < 1:
            raise ValueError("max_expansion_ratio must be at least 1")
        if token is not None and (not token or token != token.strip()):
            raise ValueError("the API token must be non-empty, without surrounding spaces")
        self._given_token = token
        #: As root, each running job runs as one of these users (see `isolation`).
        self._job_ids = job_ids
        self._allowed_hosts = list(allowed_hosts)
        self.layout = DataLayout(data_dir)
        self.host = host
        self.port = port
        self.max_archive_size = max_archive_size
        self.audience = audience
        self.deployment = deployment or Deployment()
        self._public_url = public_url.rstrip("/") if public_url else None
        self._config = RunnerConfig(
            max_running=max_running,
            job_timeout=job_timeout,
            kernel_name=kernel_name,
            max_unpacked_size=4 * max_archive_size,
            max_expansion_ratio=max_expansion_ratio,
            reconcile_interval=reconcile_interval,
            stage2_env=dict(stage2_env or {}),
            stage2_data_dir=Path(stage2_data_dir).resolve() if stage2_data_dir else None,
            # the TEE image's packages instead of the backend's own, when given
            interpreter=interpreter_for(stage2_python) if stage2_python else job_interpreter(),
        )
        self._url: str | None = None
        self._server: tornado.httpserver.HTTPServer | None = None
        self._store: JobStore | None = None
        self._runner: JobRunner | None = None
        self._db_pool: ThreadPoolExecutor | None = None
        self._io_pool: ThreadPoolExecutor | None = None
        self._lock_file: IO[bytes] | None = None
        self._sockets: list[socket.socket] = []
        self._state = "new"  # new -> starting -> running -> stopped
        self._loop: asyncio.AbstractEventLoop | None = None
        #: cleared by `hold_submits`: a submit's reply waits (its body is read meanwhile)
        self._submits_open = asyncio.Event()
        self._submits_open.set()
        self.signer: UrlSigner
        self.tokens: TokenIssuer
        self.access: AccessPolicy
        self.access_token: str = ""
        self.listening: list[str] = []

    # -- properties --------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://<host>:<port>`` once started (no trailing slash)."""
        if self._url is None:
            raise RuntimeError("the backend is not started")
        return self._url

    @property
    def public_url(self) -> str:
        """The base of signed URLs and the tokens' ``iss``."""
        return self._public_url or self.url

    @property
    def data_dir(self) -> Path:
        return self.layout.root

    @property
    def token(self) -> str:
        """The API token every job route requires (``Authorization: <token>``)."""
        return self.access_token

    @property
    def confinement(self) -> Confinement:
        """How this backend's jobs are confined (set when it starts)."""
        if self._runner is None:
            raise RuntimeError("the backend has not started")
        return self._runner.confinement

    @property
    def runs_root(self) -> Path:
        """The folder (outside the data directory) that holds each running job's folder."""
        return runs_root_for(self.layout.root)

    # -- thread helpers ----------------------------------------------------------------
    async def _db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a store call on the single database thread."""
        assert self._db_pool is not None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_pool, functools.partial(fn, *args, **kwargs))

    async def run_io(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking file work on the I/O threads, off the event loop."""
        assert self._io_pool is not None
        return await asyncio.get_running_loop().run_in_executor(self._io_pool, fn, *args)

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Open the data directory and serve on ``host:port`` in the running loop."""
        if self._state != "new":
            raise RuntimeError("a LocalBackend can be started once")
        self._state = "starting"
        try:
            await self._start()
        except BaseException:
            await self._teardown()
            self._state = "stopped"
            raise
        self._state = "running"

    async def _start(self) -> None:
        self._db_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="manatee-db")
        self._io_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="manatee-io")
        await self.run_io(self.layout.create)
        self._lock_file = await self.run_io(self._lock_data_dir)

        self._loop = asyncio.get_running_loop()
        self._sockets = sockets = tornado.netutil.bind_sockets(self.port, self.host)
        port = sockets[0].getsockname()[1]
        url_host = "127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host
        if ":" in url_host:
            url_host = f"[{url_host}]"
        self._url = f"http://{url_host}:{port}"
        self.listening = await self.run_io(listening_addresses, sockets)  # may ask DNS
        if not is_loopback(self.host):
            log.warning(
                "manatee-local listens beyond this machine, on %s: anyone who can reach "
                "it and holds the API token can run notebooks here. Requests must name "
                "an allowed Host (--allowed-host).",
                ", ".join(self.listening),
            )

        if self._given_token is not None:
            await self.run_io(save_token, self.layout.api_token, self._given_token)
            self.access_token = self._given_token
        else:
            self.access_token = await self.run_io(load_or_create_token, self.layout.api_token)
        self.access = AccessPolicy(
            self.access_token,
            port,
            AccessPolicy.names_for(self.host, self._public_url, self._allowed_hosts),
        )

        self.signer = await self.run_io(
            UrlSigner.load_or_create, self.layout.url_secret, self.public_url
        )
        self.tokens = await self.run_io(
            TokenIssuer.load_or_create,
            self.layout.token_key,
            self.public_url,
            self.audience,
            self.deployment,
        )
        self._store = await self._db(JobStore, self.layout.db)
        interrupted = await self._db(
            self._store.fail_in_progress, {BUILDING, STARTING, RUNNING}, FAILED, INTERRUPTED_REASON
        )
        if interrupted:
            log.warning("%d job(s) were interrupted by the last stop", len(interrupted))
        known = await self._db(self._store.all_uuids)
        await self.run_io(self._sweep, known)

        reachable = list(self._config.interpreter.paths)
        if self._config.stage2_data_dir is not None:
            reachable.append(self._config.stage2_data_dir)
        confinement = plan_confinement(
            data_dir=self.layout.root,
            reachable=reachable,
            runs_root=self.runs_root,
            ids=self._job_ids,
        )
        if confinement.warning:
            log.warning("%s", confinement.warning)
        else:
            ids = confinement.ids
            assert ids is not None
            log.info(
                "jobs run confined, each as a user of its own (uids %d-%d) in namespaces of "
                "its own, without the data directory",
                ids.start,
                ids.stop - 1,
            )
        await self.run_io(prepare_runs_root, self.runs_root, confinement.isolated)
        self._runner = JobRunner(
            layout=self.layout,
            store=self._store,
            db=self._db,
            io_pool=self._io_pool,
            tokens=self.tokens,
            config=self._config,
            runs_root=self.runs_root,
            confinement=confinement,
        )
        self._server = tornado.httpserver.HTTPServer(make_app(self), max_body_size=MAX_JSON_BODY)
        self._server.add_sockets(sockets)
        await self._runner.start()
        log.info("ManaTEE local backend serving %s (data dir %s)", self._url, self.layout.root)

    async def stop(self) -> None:
        """Stop serving and kill running jobs (they become status 7). Safe to call twice."""
        if self._state in ("new", "stopped"):
            self._state = "stopped"
            return
        self._state = "stopped"
        await self._teardown()

    async def _teardown(self) -> None:
        if self._server is not None:
            self._server.stop()
        if self._runner is not None:
            await self._runner.stop()
            with contextlib.suppress(OSError):  # empty once every job is cleaned up
                self.runs_root.rmdir()
        if self._store is not None:
            with contextlib.suppress(Exception):
                await self._db(
                    self._store.fail_in_progress,
                    {BUILDING, STARTING, RUNNING},
                    FAILED,
                    INTERRUPTED_REASON,
                )
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.close_all_connections(), timeout=5)
        else:
            for sock in self._sockets:
                sock.close()
        if self._store is not None:
            await self._db(self._store.close)
            self._store = None
        for pool in (self._db_pool, self._io_pool):
            if pool is not None:
                pool.shutdown(wait=True)
        self._db_pool = self._io_pool = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _lock_data_dir(self) -> IO[bytes]:
        handle = open(self.layout.lock, "a+b")  # held open until stop
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                handle.close()
                raise DataDirInUse(
                    f"the data directory {self.layout.root} is in use by another "
                    "ManaTEE local backend"
                ) from exc
        return handle

    def _sweep(self, known: set[str]) -> None:
        """Remove what a stop may have left half-done: temp files, orphans, workspaces.

        The creators' workspace objects stay (as in upstream's bucket)."""
        layout = self.layout
        for entry in layout.uploads.iterdir():
            remove_tree(entry)
        remove_tree(layout.legacy_archives)
        for entry in layout.storage.iterdir():
            if entry.is_dir():
                for child in entry.iterdir():
                    if child.name.startswith(TMP_PREFIX):
                        remove_tree(child)
        for entry in layout.jobs.iterdir():
            if entry.name not in known:
                remove_tree(entry)
                continue
            for child in entry.iterdir():
                if child.name != layout.executor_log(entry.name).name:
                    remove_tree(child)
        for entry in layout.outputs.iterdir():
            if entry.name not in known:
                remove_tree(entry)
                continue
            for child in entry.iterdir():
                if child.name.startswith(TMP_PREFIX):
                    remove_tree(child)
        for entry in layout.root.iterdir():
            if entry.name.startswith(TMP_PREFIX):
                remove_tree(entry)

    @contextlib.contextmanager
    def running_in_thread(self) -> Iterator[LocalBackend]:
        """Serve on a new thread with its own event loop; stop on leaving the block."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:
                failure.append(exc)
            ready.set()
            if not failure:
                loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

        thread = threading.Thread(target=serve, name="manatee-local-backend", daemon=True)
        thread.start()
        ready.wait()
        if failure:
            thread.join()
            raise failure[0]
        try:
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout=120)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)

    # -- operations used by the handlers -----------------------------------------------
    async def query_jobs(
        self, creator: str, page: int, page_size: int
    ) -> tuple[list[dict[str, Any]], int]:
        assert self._store is not None
        jobs, total = await self._db(self._store.query, creator, page, page_size)
        return [job.api_dict() for job in jobs], total

    async def find_job(self, job_id: int, creator: str) -> JobRecord | None:
        assert self._store is not None
        return await self._db(self._store.get, job_id, creator)

    async def at_job_limit(self, creator: str) -> bool:
        assert self._store is not None
        return await self._db(self._store.in_progress, creator) >= MAX_IN_PROGRESS_PER_CREATOR

    async def accept_job(
        self,
        *,
        temp_archive: Path,
        creator: str,
        notebook: str,
        envs: list[dict[str, str]],
        archive_sha256: str,
        archive_size: int,
    ) -> str | None:
        """Store a received archive and create its job; None when the creator is at the limit."""
        assert self._store is not None and self._runner is not None
        job_uuid = str(uuid_module.uuid4())
        record = await self._db(
            self._store.create_job,
            job_uuid=job_uuid,
            creator=creator,
            notebook=notebook,
            envs=envs,
            archive_sha256=archive_sha256,
            archive_size=archive_size,
        )
        if record is None:
            return None
        # As upstream: the creator's one workspace object is replaced, whatever earlier
        # job of theirs has not started its build yet (that job will build these files).
        await self.run_io(self._store_workspace, temp_archive, creator)
        log.info("job %s (id %d) submitted by %r: %s", job_uuid, record.id, creator, notebook)
        self._runner.enqueue(job_uuid)
        return job_uuid

    def _store_workspace(self, temp_archive: Path, creator: str) -> None:
        target = self.layout.workspace_archive(creator)
        target.parent.mkdir(mode=0o700, exist_ok=True)
        os.replace(temp_archive, target)

    async def delete_job(self, job_uuid: str, creator: str) -> bool:
        """Soft delete, as upstream: the job leaves every list and is no longer tracked;
        a running job runs on, its output, token and workspace stay. False if none matched."""
        assert self._store is not None
        deleted = await self._db(self._store.delete, job_uuid, creator)
        if deleted:
            log.info("job %s deleted (soft: its run and files are left alone)", job_uuid)
        return deleted

    # -- build control -----------------------------------------------------------------
    def hold_builds(self) -> None:
        """Start no build (status 0 -> 1) until `release_builds`; callable from any thread."""
        self._in_loop(lambda runner: runner.hold())

    def release_builds(self) -> None:
        """Let the reconciler start builds again, at once."""
        self._in_loop(lambda runner: runner.release())

    def hold_submits(self) -> None:
        """Answer no submit until `release_submits` (each body is still read to its end):
        for tests of what a client shows while an upload is under way; callable from any
        thread."""
        self._in_loop(lambda _runner: self._submits_open.clear())

    def release_submits(self) -> None:
        """Answer the held submits, and every later one at once."""
        self._in_loop(lambda _runner: self._submits_open.set())

    async def submits_answered(self) -> None:
        """Return once submits are not held (`hold_submits`)."""
        await self._submits_open.wait()

    def _in_loop(self, action: Callable[[JobRunner], None]) -> None:
        runner, loop = self._runner, self._loop
        if runner is None or loop is None:
            raise RuntimeError("the backend is not started")
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if current is loop:
            action(runner)
            return

        async def run() -> None:
            action(runner)

        asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=30)

    # -- for tests ---------------------------------------------------------------------
    async def wait_for_status(
        self, uuid: str, statuses: set[int], timeout: float
    ) -> dict[str, Any]:
        """Poll until job ``uuid`` has a status in ``statuses``; returns its JOB dict."""
        assert self._store is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last: JobRecord | None = None
        while True:
            last = await self._db(self._store.get_by_uuid, uuid)
            if last is None:
                raise LookupError(f"no job {uuid}")
            if last.job_status in statuses:
                return last.api_dict()
            if loop.time() >= deadline:
                raise TimeoutError(
                    f"job {uuid} is in status {last.job_status} ({last.status_reason!r}) "
                    f"after {timeout} s, not in {sorted(statuses)}"
                )
            await asyncio.sleep(0.1)


def listening_addresses(sockets: list[socket.socket]) -> list[str]:
    """``host:port`` of each listening socket; a wildcard is expanded to this machine's
    addresses (what others can actually reach)."""
    found: list[str] = []
    for sock in sockets:
        host, port = sock.getsockname()[:2]
        hosts = [host]
        if host in ("0.0.0.0", "::"):
            hosts = _machine_addresses(sock.family) or [host]
        for address in hosts:
            text = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
            if text not in found:
                found.append(text)
    return found


def _machine_addresses(family: int) -> list[str]:
    """This machine's addresses of one family (best effort, standard library only)."""
    addresses: set[str] = set()
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None, family):
            addresses.add(str(info[4][0]))
    if family == socket.AF_INET6:
        with contextlib.suppress(OSError), open("/proc/net/if_inet6") as handle:
            for line in handle:
                raw = line.split()[0]
                addresses.add(str(ipaddress.ip_address(int(raw, 16))))
    elif family == socket.AF_INET:
        lines: list[str] = []
        with contextlib.suppress(OSError), open("/proc/net/fib_trie") as handle:
            lines = handle.read().splitlines()
        for previous, line in itertools.pairwise(lines):
            if "/32 host LOCAL" in line:
                addresses.add(previous.split()[-1])
    return sorted(addresses)
