"""Keeping a job away from the backend's secrets (signing keys, URL secret, environment).

A submitted notebook is untrusted code. Run as the backend's own user it could read the
token signing key in the data directory and sign any output. So, when the backend runs as
root (containers, CI), every job's executor and kernel run:

- in a private mount namespace (``unshare --mount --propagation private``) where the data
  directory is covered by an empty tmpfs, and where each folder other users cannot enter
  (e.g. ``/root``, mode 700, which holds pyenv's interpreter) is covered by a tmpfs that
  holds only the paths the interpreter needs, bound back read-only;
- as an unprivileged user (``nobody``) with no capabilities, no supplementary groups and
  ``no_new_privs`` (``setpriv``), so it can neither undo those mounts nor read what is
  root's (the data directory is 0700 root; ``/proc/<backend>/environ`` is root's).

Not root, the backend cannot switch users: jobs run as the backend's user and could read
the data directory; the backend says so at start (`Confinement.warning`). In both cases
the job's environment is built from an allow-list and its workspace lives outside the
data directory (see the runner).

``python -m jupyterlab_manatee.local_backend.isolation --plan JSON --stage DIR -- CMD...``
is the step that runs inside the new namespace, as root: it makes the mounts, then execs
``setpriv ... CMD`` (same pid throughout, so the runner's process group stays valid).
"""

from __future__ import annotations

import argparse
import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .protocol import EXIT_NOT_CONFINED

#: ``nobody``'s ids where the user database lacks it.
_FALLBACK_ID = 65534
_TOOLS = ("unshare", "mount", "setpriv")
LAUNCHER_MODULE = "jupyterlab_manatee.local_backend.isolation"


class IsolationError(RuntimeError):
    """Running as root, jobs cannot be confined: the backend refuses to start."""


@dataclass(frozen=True)
class Confinement:
    """How jobs are confined; ``uid`` None means they run as the backend's own user."""

    uid: int | None = None
    gid: int | None = None
    keep: tuple[str, ...] = ()  # bound back read-only inside the covers
    covers: tuple[str, ...] = ()  # folders other users cannot enter, covered by a tmpfs
    hide: tuple[str, ...] = ()  # covered by an empty tmpfs (the data directory)
    tools: dict[str, str] = field(default_factory=dict)

    @property
    def isolated(self) -> bool:
        return self.uid is not None

    @property
    def warning(self) -> str | None:
        """What an operator must know when jobs are not confined."""
        if self.isolated:
            return None
        return (
            "jobs run as this backend's own user (it is not root, so it cannot switch to an "
            "unprivileged one): a submitted notebook can read the data directory, including "
            "the token signing key, and sign any output. Run the backend as root (e.g. in a "
            "container) to confine jobs; see README, 'The local backend's trust boundary'."
        )

    def wrap(self, command: list[str], stage: Path) -> list[str]:
        """The command that runs ``command`` confined (``command`` itself when not isolated).

        ``stage`` is an empty folder only root can enter, used while mounting.
        """
        if not self.isolated:
            return command
        plan = {
            "uid": self.uid,
            "gid": self.gid,
            "keep": list(self.keep),
            "covers": list(self.covers),
            "hide": list(self.hide),
            "mount": self.tools["mount"],
            "setpriv": self.tools["setpriv"],
        }
        return [
            self.tools["unshare"],
            "--mount",
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


def _nobody() -> tuple[int, int]:
    try:
        user = pwd.getpwnam("nobody")
        uid, gid = user.pw_uid, user.pw_gid
    except KeyError:
        uid, gid = _FALLBACK_ID, _FALLBACK_ID
    try:
        gid = grp.getgrnam("nogroup").gr_gid
    except KeyError:
        pass
    return uid, gid


def _others_may(path: Path, bits: int) -> bool:
    try:
        return path.stat().st_mode & bits == bits
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def plan(
    *, data_dir: Path, reachable: Iterable[Path], runs_root: Path, euid: int | None = None
) -> Confinement:
    """Decide how jobs are confined (see the module's docstring).

    ``reachable`` are the paths a job's interpreter must read (its prefixes, ``sys.path``,
    the stage-2 data); ``runs_root`` holds the jobs' workspaces. As root, raise
    `IsolationError` when confinement cannot be set up, rather than run jobs unconfined.
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
    data_dir = data_dir.resolve()
    covers: set[Path] = set()
    keep: set[Path] = set()
    for path in {Path(p).resolve() for p in reachable}:
        if not path.exists():
            continue
        if _inside(path, data_dir):
            raise IsolationError(f"{path} is inside the data directory, which jobs cannot see")
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
            keep.add(path)
    if any(_inside(runs_root.resolve(), cover) for cover in covers):
        raise IsolationError(
            f"the jobs' folder {runs_root} lies in a folder other users cannot enter; "
            "set TMPDIR to another folder"
        )
    # a path inside another kept path comes with it
    kept = sorted(p for p in keep if not any(p != q and _inside(p, q) for q in keep))
    uid, gid = _nobody()
    return Confinement(
        uid=uid,
        gid=gid,
        keep=tuple(str(p) for p in kept),
        covers=tuple(sorted(str(c) for c in covers)),
        hide=(str(data_dir),),
        tools={name: str(where) for name, where in tools.items()},
    )


# -- inside the namespace (root), before dropping to the job's user ----------------------
def _confine(plan_: dict[str, Any], stage: Path) -> None:
    def mount(*args: str) -> None:
        subprocess.run([plan_["mount"], *args], check=True)

    os.umask(0o022)
    staged = 0
    for cover in plan_["covers"]:
        keeps = [k for k in plan_["keep"] if _inside(Path(k), Path(cover))]
        holders = []
        for kept in keeps:
            holder = stage / str(staged)
            staged += 1
            holder.mkdir(mode=0o700)
            mount("--rbind", kept, str(holder))
            holders.append((kept, holder))
        mount("-t", "tmpfs", "-o", "mode=0755,size=1m,nosuid,nodev", "tmpfs", cover)
        for kept, holder in holders:
            Path(kept).mkdir(parents=True, exist_ok=True)
            mount("--move", str(holder), kept)
            mount("-o", "remount,bind,ro", kept)
    for hidden in plan_["hide"]:
        if Path(hidden).is_dir():
            mount("-t", "tmpfs", "-o", "mode=0755,size=16k,nosuid,nodev,noexec", "tmpfs", hidden)


def main(argv: list[str] | None = None) -> int:
    """Mount, drop to the job's user, exec the command (only returns on failure)."""
    parser = argparse.ArgumentParser(description="Confine a ManaTEE job (run by the backend).")
    parser.add_argument("--plan", required=True)
    parser.add_argument("--stage", required=True, type=Path)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    plan_ = json.loads(args.plan)
    if os.geteuid() != 0 or not command:
        print("isolation: must run as root with a command", file=sys.stderr)
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
