"""Keeping a job away from the backend's secrets and from the other jobs.

A submitted notebook is untrusted code. Run as the backend's own user it could read the
token signing key in the data directory and sign any output; run beside another
creator's job it could read or change that job's files and environment. So, when the
backend runs as root (containers, CI), every job's executor and kernel run:

- as a user of its own: each running job holds one uid (and a gid of the same number)
  from a range no user or group of the system has (`JobIds`; 200000-200999 by default).
  File permissions and /proc's ptrace checks then keep jobs apart even where they share
  a folder; an id is given back only once the job's processes are all gone and its
  folder removed. No capabilities, no supplementary groups, ``no_new_privs`` (``setpriv``);
- in namespaces of its own (``unshare``):

  * a PID namespace, with /proc mounted anew inside: a job cannot even see another job's
    processes (nor the backend's), so it has no pid to aim at; the executor is the
    namespace's init, so when the backend kills the one process group it started, the
    kernel takes the whole job down with it. The backend needs no pid from the job;
  * an IPC namespace (System V shared memory, semaphores, message queues);
  * a mount namespace where every folder all users may write (/tmp, /var/tmp, /dev/shm,
    /run/lock) is covered by a private tmpfs, with only the job's own folder bound back
    into it; where the data directory is covered by an empty tmpfs; and where each
    folder other users cannot enter (e.g. ``/root``, mode 700, which holds pyenv's
    interpreter) is covered by a tmpfs that holds only the paths the interpreter needs,
    bound back read-only.

Not a namespace of its own: the network. Jobs share the host's network and loopback (a
notebook may ``%pip install``); nor are CPU, memory or disk use limited per job.

Not root, the backend cannot switch users: jobs run as the backend's user and could read
the data directory; the backend says so at start (`Confinement.warning`). In both cases
the job's environment is built from an allow-list and its workspace lives outside the
data directory (see the runner).

``python -m jupyterlab_manatee.local_backend.isolation --plan JSON --stage DIR -- CMD...``
is the step that runs inside the new namespaces, as root and as their init: it makes the
mounts, then execs ``setpriv ... CMD`` (same pid throughout, so CMD is the init).
"""

from __future__ import annotations

import argparse
import fcntl
import grp
import json
import logging
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .protocol import EXIT_NOT_CONFINED

log = logging.getLogger(__name__)

_TOOLS = ("unshare", "mount", "setpriv")
LAUNCHER_MODULE = "jupyterlab_manatee.local_backend.isolation"
#: The job users' ids (uid and gid alike), one per running job.
DEFAULT_JOB_IDS = range(200_000, 201_000)
#: Folders every user may write, which each job gets a private (empty) one of.
SHARED_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock")
#: Where backends on this machine (all of them, any process) lock the ids they hand out.
ID_LOCKS = Path("/run/manatee-local-job-ids")


class IsolationError(RuntimeError):
    """Running as root, jobs cannot be confined: the backend refuses to start."""


@dataclass(frozen=True)
class Confinement:
    """How jobs are confined; ``ids`` None means they run as the backend's own user."""

    ids: range | None = None  # each running job gets one of these as its uid and gid
    keep: tuple[str, ...] = ()  # bound back read-only inside the covers
    covers: tuple[str, ...] = ()  # folders other users cannot enter, covered by a tmpfs
    shared: tuple[str, ...] = ()  # folders all users may write: a private tmpfs each
    hide: tuple[str, ...] = ()  # covered by an empty tmpfs (the data directory)
    tools: dict[str, str] = field(default_factory=dict)

    @property
    def isolated(self) -> bool:
        return self.ids is not None

    @property
    def warning(self) -> str | None:
        """What an operator must know when jobs are not confined."""
        if self.isolated:
            return None
        return (
            "jobs run as this backend's own user (it is not root, so it cannot switch to an "
            "unprivileged one): a submitted notebook can read the data directory, including "
            "the token signing key, and sign any output, and jobs running at the same time "
            "can reach each other's files and processes. Run the backend as root (e.g. in a "
            "container) to confine jobs; see docs/operators/local-backend.md, 'The local "
            "backend's trust boundary'."
        )

    def wrap(self, command: list[str], *, uid: int | None, run_dir: Path, stage: Path) -> list[str]:
        """The command that runs ``command`` confined as ``uid`` (``command`` itself when
        not isolated).

        ``run_dir`` is the job's own folder (bound back, writable, into a covered
        folder); ``stage`` an empty folder only root can enter, used while mounting.
        The outer ``setpriv --pdeathsig`` ends the job if the backend dies.
        """
        if not self.isolated:
            return command
        assert uid is not None and self.ids is not None and uid in self.ids
        plan = {
            "uid": uid,
            "gid": uid,
            "own": str(run_dir),
            "keep": list(self.keep),
            "covers": list(self.covers),
            "shared": list(self.shared),
            "hide": list(self.hide),
            "mount": self.tools["mount"],
            "setpriv": self.tools["setpriv"],
        }
        return [
            self.tools["setpriv"],
            "--pdeathsig",
            "KILL",
            "--",
            self.tools["unshare"],
            "--pid",
            "--kill-child",
            "--mount",
            "--ipc",
            "--propagation",
            "private",
            "--",
            sys.executable,
            "-m",
            LAUNCHER_MODULE,
            "--plan",
            json.dumps(plan),
            "--stage",
            str(stage),
            "--",
            *command,
        ]


class JobIds:
    """Hands out the job users' ids: the lowest one that no job holds.

    An id is held through an exclusive lock on a file of root's in `ID_LOCKS`, so two
    backends on one machine (or in one process) never give two jobs the same user; the
    lock goes with the process that holds it. An id still used by a process (say a job
    of a backend that died) is skipped. Methods block: call them off the event loop.
    """

    def __init__(self, ids: range, locks: Path = ID_LOCKS) -> None:
        self._ids = ids
        self._locks = locks
        self._held: dict[int, int] = {}  # id -> fd of its lock file
        self._mutex = threading.Lock()

    def take(self) -> int:
        """An id for a job about to start; `IsolationError` when every one is in use."""
        with self._mutex:
            _private_folder(self._locks)
            for uid in self._ids:
                if uid in self._held:
                    continue
                fd = os.open(self._locks / str(uid), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                if processes_of(uid):
                    os.close(fd)
                    log.warning("job user %d still has processes: not handed out", uid)
                    continue
                self._held[uid] = fd
                return uid
        raise IsolationError(f"every job user ({self._ids.start}-{self._ids.stop - 1}) is in use")

    def give_back(self, uid: int, run_dir: Path, wait: float = 10.0) -> bool:
        """Free ``uid`` once its job's processes are gone and ``run_dir`` is removed;
        False (and the id stays out of use while this backend runs) otherwise.

        The job's processes die with its PID namespace's init, which the backend killed
        but whose namespace may take a moment to empty: wait up to ``wait`` seconds.
        """
        deadline = time.monotonic() + wait
        while processes_of(uid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if processes_of(uid) or os.path.lexists(run_dir):
            log.error("job user %d is kept out of use: its job left processes or files", uid)
            return False
        with self._mutex:
            fd = self._held.pop(uid, None)
            if fd is not None:
                os.close(fd)
        return True

    def close(self) -> None:
        """Free every id still held (the backend stops; `take` skips busy ones anyway)."""
        with self._mutex:
            for fd in self._held.values():
                os.close(fd)
            self._held.clear()


def processes_of(uid: int) -> list[int]:
    """Pids of the live processes (this PID namespace sees) with ``uid`` among their uids.

    Zombies do not count: they run nothing and hold no file (a job's killed init may
    wait a moment for its new parent to reap it).
    """
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", encoding="utf-8", errors="replace") as f:
                rows = {row.split(":", 1)[0]: row.split()[1:] for row in f if ":" in row}
        except OSError:  # it ended meanwhile
            continue
        if str(uid) in rows.get("Uid", []) and rows.get("State", ["?"])[0] != "Z":
            pids.append(int(entry.name))
    return pids


def _private_folder(path: Path) -> None:
    """Make ``path`` a folder of ours only others cannot enter, or refuse one that is not."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise IsolationError(f"{path} is not a private folder of this user")


def _id_collisions(ids: range) -> list[str]:
    """Who on this system already has an id of ``ids`` (users, groups, subordinate ids)."""
    found = [f"user {u.pw_name} ({u.pw_uid})" for u in pwd.getpwall() if u.pw_uid in ids]
    found += [f"group {g.gr_name} ({g.gr_gid})" for g in grp.getgrall() if g.gr_gid in ids]
    for table in ("/etc/subuid", "/etc/subgid"):
        try:
            lines = Path(table).read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            parts = line.strip().split(":")
            if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
                continue
            first, count = int(parts[1]), int(parts[2])
            if first < ids.stop and ids.start < first + count:
                found.append(f"{table} entry {line.strip()}")
    return found


def _others_may(path: Path, bits: int) -> bool:
    try:
        return path.stat().st_mode & bits == bits
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def shared_folders(extra: Iterable[Path] = ()) -> list[Path]:
    """The folders every user may write (`SHARED_FOLDERS`, the temp folder, ``extra``)."""
    found = set()
    for name in (*SHARED_FOLDERS, tempfile.gettempdir(), *extra):
        path = Path(name).resolve()
        if path.is_dir() and _others_may(path, stat.S_IWOTH):
            found.add(path)
    return sorted(found)


def plan(
    *,
    data_dir: Path,
    reachable: Iterable[Path],
    runs_root: Path,
    euid: int | None = None,
    ids: range = DEFAULT_JOB_IDS,
) -> Confinement:
    """Decide how jobs are confined (see the module's docstring).

    ``reachable`` are the paths a job's interpreter must read (its prefixes, ``sys.path``,
    the stage-2 data); ``runs_root`` holds the jobs' workspaces; ``ids`` the job users'
    ids. As root, raise `IsolationError` when confinement cannot be set up, rather than
    run jobs unconfined.
    """
    if (os.geteuid() if euid is None else euid) != 0:
        return Confinement()
    tools = {name: shutil.which(name) for name in _TOOLS}
    missing = [name for name, where in tools.items() if where is None]
    if missing:
        raise IsolationError(
            f"running as root, jobs must be confined, but {', '.join(missing)} "
            "(util-linux) is not installed"
        )
    if not ids or ids.step != 1 or ids.start < 1 or ids.stop > 2**32 - 1:
        raise IsolationError(f"the job users' ids {ids} are not a range of user ids")
    taken = _id_collisions(ids)
    if taken:
        raise IsolationError(
            f"the job users' ids {ids.start}-{ids.stop - 1} must belong to no one, but "
            f"{', '.join(taken[:3])}{' and more' if len(taken) > 3 else ''} use some: "
            "choose another range"
        )
    data_dir = data_dir.resolve()
    shared = shared_folders()
    covers: set[Path] = set()
    paths = {Path(p).resolve() for p in reachable}
    for path in paths:
        if not path.exists():
            continue
        if _inside(path, data_dir):
            raise IsolationError(f"{path} is inside the data directory, which jobs cannot see")
        if path in shared:
            raise IsolationError(
                f"jobs cannot be given {path}: every user may write there, and each job "
                "gets a private one"
            )
        if not _others_may(path, stat.S_IROTH | (stat.S_IXOTH if path.is_dir() else 0)):
            raise IsolationError(
                f"jobs run as an unprivileged user, who cannot read {path} (make it readable "
                "by others, or use an interpreter outside private folders)"
            )
        blocked = next(
            (a for a in reversed(path.parents) if not _others_may(a, stat.S_IXOTH)), None
        )
        if blocked is not None:
            covers.add(blocked)
    if any(_inside(runs_root.resolve(), cover) for cover in covers):
        raise IsolationError(
            f"the jobs' folder {runs_root} lies in a folder other users cannot enter; "
            "set TMPDIR to another folder"
        )
    # what lies in a covered folder is bound back; a path inside another kept one comes
    # with it
    keep = {p for p in paths if p.exists() and any(_inside(p, c) for c in (*covers, *shared))}
    kept = sorted(p for p in keep if not any(p != q and _inside(p, q) for q in keep))
    return Confinement(
        ids=ids,
        keep=tuple(str(p) for p in kept),
        covers=tuple(sorted(str(c) for c in covers)),
        shared=tuple(str(s) for s in shared),
        hide=(str(data_dir),),
        tools={name: str(where) for name, where in tools.items()},
    )


# -- inside the namespaces (root, their init), before dropping to the job's user --------
def _make_like(source: Path, target: Path) -> None:
    """An empty folder or file at ``target`` to mount ``source`` on."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        target.mkdir(exist_ok=True)
    else:
        target.touch(exist_ok=True)


def _confine(plan_: dict[str, Any], stage: Path) -> None:
    """Cover the covers (each with a fresh tmpfs holding only what is bound back into
    it), hide the data directory, mount /proc for the new PID namespace."""

    def mount(*args: str) -> None:
        subprocess.run([plan_["mount"], *args], check=True)

    os.umask(0o022)
    modes = {Path(c): "0755" for c in plan_["covers"]}
    modes.update({Path(s): "1777" for s in plan_["shared"]})
    # a cover inside another is hidden by it already
    tops = [c for c in modes if not any(o != c and _inside(c, o) for o in modes)]
    binds = [(Path(k), True) for k in plan_["keep"]] + [(Path(plan_["own"]), False)]
    binds = [(path, ro) for path, ro in binds if any(_inside(path, top) for top in tops)]
    # Everything is staged in a tmpfs on ``stage`` before any cover goes up (a cover
    # hides what is beneath it, maybe ``stage`` itself): first the bound-back paths...
    mount("-t", "tmpfs", "-o", "mode=0700,size=1m,nosuid,nodev", "tmpfs", str(stage))
    holders = []
    for number, (path, read_only) in enumerate(binds):
        holder = stage / f"bind-{number}"
        _make_like(path, holder)
        mount("--rbind", str(path), str(holder))
        holders.append((path, read_only, holder))
    # ...then each cover's tmpfs, with those paths moved into it...
    layers = []
    for number, top in enumerate(tops):
        layer = stage / f"cover-{number}"
        layer.mkdir(mode=0o700)
        mount("-t", "tmpfs", "-o", f"mode={modes[top]},nosuid,nodev", "tmpfs", str(layer))
        for path, read_only, holder in holders:
            if _inside(path, top):
                target = layer / path.relative_to(top)
                _make_like(path, target)
                mount("--move", str(holder), str(target))
                if read_only:
                    mount("-o", "remount,bind,ro", str(target))
        layers.append((layer, top))
    # ...then the covers go up, the one over ``stage`` last.
    layers.sort(key=lambda item: _inside(stage, item[1]))
    for layer, top in layers:
        mount("--move", str(layer), str(top))
    for hidden in plan_["hide"]:
        if Path(hidden).is_dir():
            mount("-t", "tmpfs", "-o", "mode=0755,size=16k,nosuid,nodev,noexec", "tmpfs", hidden)
    mount("-t", "proc", "-o", "nosuid,nodev,noexec", "proc", "/proc")


def main(argv: list[str] | None = None) -> int:
    """Mount, drop to the job's user, exec the command (only returns on failure)."""
    parser = argparse.ArgumentParser(description="Confine a ManaTEE job (run by the backend).")
    parser.add_argument("--plan", required=True)
    parser.add_argument("--stage", required=True, type=Path)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    plan_ = json.loads(args.plan)
    if os.geteuid() != 0 or not command or os.getpid() != 1:
        print(
            "isolation: must run as root, as a PID namespace's init, with a command",
            file=sys.stderr,
        )
        return EXIT_NOT_CONFINED
    try:
        _confine(plan_, args.stage)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"isolation: cannot confine the job: {exc}", file=sys.stderr)
        return EXIT_NOT_CONFINED
    setpriv = [
        plan_["setpriv"],
        f"--reuid={plan_['uid']}",
        f"--regid={plan_['gid']}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        # a change of user clears unshare's --kill-child: ask again, as the job's user
        "--pdeathsig=KILL",
        "--",
        *command,
    ]
    try:
        os.execv(setpriv[0], setpriv)
    except OSError as exc:
        print(f"isolation: cannot drop to the job's user: {exc}", file=sys.stderr)
    return EXIT_NOT_CONFINED


if __name__ == "__main__":
    sys.exit(main())
