"""The confinement launcher run for real, fast: what a job finds once
``python -m jupyterlab_manatee.local_backend.isolation`` has made its mounts and dropped to
the job's user, and how the launcher refuses when it cannot confine.

No backend and no notebook: each scenario builds a `Confinement` over small trees of its
own, runs the command line `Confinement.wrap` makes (``setpriv``, ``unshare``, the
launcher; the launcher imported by name, see `by_name`) with a probe as the job's
command, and the probe prints what it sees (its ids, capabilities, /proc,
/proc/self/mountinfo, the folders) as JSON. One run serves all the tests of a scenario;
each test checks one fact. test_confinement.py and test_jobs_apart.py
run real notebooks confined by a real backend; these tests pin every effect of `_confine`
and `main` quickly enough to rerun for every mutant (``python -m tests.mutation isolation``).
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyterlab_manatee.local_backend import isolation
from jupyterlab_manatee.local_backend.isolation import LAUNCHER_MODULE, Confinement
from jupyterlab_manatee.local_backend.protocol import EXIT_NOT_CONFINED

as_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="only root can confine jobs (CI runs as root)"
)
#: Ids no user, group or process of a test machine has (one per scenario).
JOB_IDS = range(300_100, 300_104)
#: The launcher imports the package the tests import (under mutation: the mutated copy).
PACKAGE_PARENT = Path(isolation.__file__).resolve().parents[2]
NO_CAPABILITIES = "0000000000000000"
CLONE_NEWPID = 0x20000000
RUN_BY_NAME = f"import sys; from {LAUNCHER_MODULE} import main; sys.exit(main())"

#: The job's command in the main scenario: prints what the job sees, as JSON. argv[1] is
#: {"look": [paths], "write": a file to create}.
PROBE = r"""
import ctypes, json, os, sys
asked = json.loads(sys.argv[1])
umask = os.umask(0o022)

def attempt(path, flags):
    try:
        os.close(os.open(path, flags, 0o644))
    except OSError as e:
        return e.errno
    return 0

def look(path):
    try:
        info = os.lstat(path)
    except OSError as e:
        return {"missing": e.errno}
    fact = {"mode": info.st_mode, "uid": info.st_uid, "dev": info.st_dev}
    if os.path.isdir(path):
        try:
            fact["list"] = sorted(os.listdir(path))
        except OSError as e:
            fact["list"] = e.errno
        probe = os.path.join(path, ".probe")
        fact["write"] = attempt(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        if fact["write"] == 0:
            os.unlink(probe)
        vfs = os.statvfs(path)
        fact["size"] = vfs.f_blocks * vfs.f_frsize
    else:
        with open(path) as f:
            fact["text"] = f.read()
        fact["write"] = attempt(path, os.O_WRONLY | os.O_APPEND)
    return fact

libc = ctypes.CDLL(None, use_errno=True)
signal = ctypes.c_int(-1)
libc.prctl(2, ctypes.byref(signal), 0, 0, 0)
with open("/proc/self/status") as f:
    status = dict(row.split(":", 1) for row in f.read().splitlines())
with open(asked["write"], "w") as f:
    f.write("written by the job\n")
with open("/proc/self/mountinfo") as f:
    mountinfo = f.read()
print(json.dumps({
    "pid": os.getpid(),
    "pids": sorted(int(name) for name in os.listdir("/proc") if name.isdigit()),
    "uids": os.getresuid(),
    "gids": os.getresgid(),
    "groups": os.getgroups(),
    "umask": umask,
    "pdeathsig": signal.value,
    "status": {key: value.strip() for key, value in status.items()},
    "mountinfo": mountinfo,
    "paths": {path: look(path) for path in asked["look"]},
}))
"""

#: The job's command where the interpreter is out of reach: the shell, and /proc.
SHELL_PROBE = ["/bin/sh", "-c", "cat /proc/self/status; echo '=='; cat /proc/self/mountinfo"]


def tools() -> dict[str, str]:
    found = {name: shutil.which(name) for name in ("unshare", "mount", "setpriv")}
    assert all(found.values()), found
    return {name: str(where) for name, where in found.items()}


def by_name(command: list[str]) -> list[str]:
    """``command`` with the launcher's ``python -m MODULE`` run as ``python -c`` importing
    MODULE's `main` by name: the same function, with the same arguments in ``sys.argv``;
    but mutmut applies a mutant only to a module imported under its own name, never to
    one run as ``__main__``."""
    at = command.index(LAUNCHER_MODULE)
    assert command[at - 1] == "-m"
    return [*command[: at - 1], "-c", RUN_BY_NAME, *command[at + 1 :]]


def launch(
    command: list[str], *, as_written: bool = False, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run a launcher command line as the backend does (a session of its own); unless
    ``as_written``, with the launcher imported by name (`by_name`)."""
    kwargs.setdefault("umask", 0o022)
    return subprocess.run(
        command if as_written else by_name(command),
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        # read now: mutmut names the mutant under test in the environment, per test run
        env={**os.environ, "PYTHONPATH": str(PACKAGE_PARENT)},
        start_new_session=True,
        **kwargs,
    )


def with_plan(command: list[str], **changes: Any) -> list[str]:
    """``command`` (made by `Confinement.wrap`) with the launcher's plan changed."""
    at = command.index("--plan") + 1
    plan = {**json.loads(command[at]), **changes}
    return [*command[:at], json.dumps(plan), *command[at + 1 :]]


@dataclasses.dataclass(frozen=True)
class Mount:
    """One row of /proc/self/mountinfo."""

    id: int
    parent: int
    root: str
    point: str
    options: frozenset[str]
    fstype: str
    source: str
    super_options: frozenset[str]


def mounts(mountinfo: str) -> list[Mount]:
    found = []
    for row in mountinfo.splitlines():
        left, right = row.split(" - ", 1)
        fields = left.split(" ")
        fstype, source, super_options = right.split(" ")
        found.append(
            Mount(
                id=int(fields[0]),
                parent=int(fields[1]),
                root=fields[3],
                point=fields[4],
                options=frozenset(fields[5].split(",")),
                fstype=fstype,
                source=source,
                super_options=frozenset(super_options.split(",")),
            )
        )
    return found


def seen_at(mountinfo: str, point: Path | str) -> Mount | None:
    """The mount a path shows (the top one of those stacked on it), or None."""
    stacked = [m for m in mounts(mountinfo) if m.point == str(point)]
    below = {m.parent for m in stacked}
    top = [m for m in stacked if m.id not in below]
    assert len(top) <= 1, top
    return top[0] if top else None


def mounted_below(mountinfo: str, folder: Path) -> list[str]:
    return sorted(m.point for m in mounts(mountinfo) if Path(m.point).parent == folder)


def make_tree(base: Path, tree: dict[str, tuple[int, str | None]]) -> None:
    """Folders (text None) and files under ``base``, with exactly these modes."""
    for name, (mode, text) in tree.items():
        path = base / name
        if text is None:
            path.mkdir()
        else:
            path.write_text(text)
        path.chmod(mode)


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    """A folder others may enter, in none all users may write, nor in a private one."""
    if os.geteuid() != 0:
        pytest.skip("only root can confine jobs (CI runs as root)")
    folder = Path(tempfile.mkdtemp(prefix="manatee-launcher-", dir="/run"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


# -- mutmut: the launcher runs in a child process ------------------------------------------
@pytest.fixture(autouse=True)
def _calls_the_launcher_in_process_for_mutmut() -> None:
    """mutmut reruns, for a mutant, only the tests that called the mutated function in
    pytest's own process while it collected its stats (``MUTANT_UNDER_TEST=stats``); the
    launcher runs in a child process, so while the stats are collected each test calls
    its functions once here too, with arguments they reject before doing anything."""
    if os.environ.get("MUTANT_UNDER_TEST") != "stats":
        return
    with pytest.raises(AttributeError):
        isolation._make_like(None, None)  # type: ignore[arg-type]
    umask = os.umask(0o022)
    try:
        with pytest.raises(TypeError):
            isolation._confine(None, None)  # type: ignore[arg-type]
    finally:
        os.umask(umask)
    assert isolation.main(["--plan", "{}", "--stage", "/nonexistent"]) == EXIT_NOT_CONFINED


# -- the main scenario: the mounts a job finds ---------------------------------------------
@dataclasses.dataclass(frozen=True)
class Job:
    """A confined run of `PROBE` and what it printed."""

    base: Path
    runs: Path
    own: Path
    stage: Path
    confinement: Confinement
    done: subprocess.CompletedProcess[str]

    @property
    def facts(self) -> dict[str, Any]:
        assert (self.done.returncode, self.done.stderr) == (0, ""), self.done
        return json.loads(self.done.stdout)

    def path(self, name: str | Path) -> dict[str, Any]:
        return self.facts["paths"][str(name)]

    def mount(self, point: Path | str) -> Mount | None:
        return seen_at(self.facts["mountinfo"], point)


@pytest.fixture(scope="module")
def runs(base: Path) -> Iterator[Path]:
    """The jobs' folder, in /tmp as the backend's is: a shared folder, so each job's own
    folder is bound back into the job's private /tmp."""
    folder = Path(tempfile.mkdtemp(prefix="manatee-launcher-runs-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder)


@pytest.fixture(scope="module")
def job(base: Path, runs: Path) -> Job:
    """A job confined as the backend confines one, plus a folder of this test's that others
    cannot enter (``locked``, a cover) holding a nested cover (``inner``), a kept file, a
    kept folder with a kept folder inside it, the stage (so that cover goes up last) and a
    file no one keeps; the data directory and a missing path hidden. Started with umask
    077 (the launcher sets its own) and a world-writable kept tree (read-only all the
    same)."""
    top = base / "main"
    make_tree(
        top,
        {
            "": (0o755, None),
            "data": (0o755, None),
            "data/token": (0o600, "the signing key\n"),
            "locked": (0o700, None),
            "locked/stage": (0o700, None),
            "locked/file.txt": (0o666, "kept file\n"),
            "locked/secret.txt": (0o644, "not kept\n"),
            "locked/lib": (0o777, None),
            "locked/lib/mod.txt": (0o666, "module\n"),
            "locked/lib/sub": (0o777, None),
            "locked/lib/sub/deeper.txt": (0o666, "deeper\n"),
            "locked/inner": (0o700, None),
            "locked/inner/secret.txt": (0o644, "not kept either\n"),
            "locked/inner/deep": (0o777, None),
            "locked/inner/deep/deep.txt": (0o666, "deep\n"),
        },
    )
    runs.chmod(0o711)
    own = runs / "job"
    own.mkdir(mode=0o700)
    (own / "mine.txt").write_text("the job's own\n")
    os.chown(own, JOB_IDS[0], JOB_IDS[0])
    locked = top / "locked"
    # the backend's own rules for the interpreter (e.g. /root covered, pyenv's kept)
    interpreter = isolation.plan(
        data_dir=top / "data",
        reachable=[Path(sys.base_prefix), Path(sys.prefix)],
        runs_root=runs,
        ids=JOB_IDS,
    )
    confinement = dataclasses.replace(
        interpreter,
        covers=(*interpreter.covers, str(locked), str(locked / "inner")),
        keep=(
            *interpreter.keep,
            str(locked / "file.txt"),
            str(locked / "inner/deep"),
            str(locked / "lib"),
            str(locked / "lib/sub"),
        ),
        hide=(str(top / "data"), str(top / "gone")),
    )
    looked_at = [
        top / "data",
        locked,
        locked / "file.txt",
        locked / "lib",
        locked / "lib/sub",
        locked / "inner",
        locked / "inner/deep",
        runs,
        own,
        *confinement.shared,
    ]
    asked = {"look": [str(p) for p in looked_at], "write": str(own / "written.txt")}
    command = confinement.wrap(
        [sys.executable, "-I", "-S", "-c", PROBE, json.dumps(asked)],
        uid=JOB_IDS[0],
        run_dir=own,
        stage=locked / "stage",
    )
    return Job(top, runs, own, locked / "stage", confinement, launch(command, umask=0o077))


@as_root
def test_the_job_runs_as_the_job_user_and_group(job: Job):
    assert (job.facts["uids"], job.facts["gids"]) == ([300_100] * 3, [300_100] * 3)


@as_root
def test_the_job_has_no_supplementary_groups(job: Job):
    assert job.facts["groups"] == []


@as_root
@pytest.mark.parametrize("capabilities", ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"])
def test_the_job_has_no_capabilities(job: Job, capabilities: str):
    assert job.facts["status"][capabilities] == NO_CAPABILITIES


@as_root
def test_the_job_cannot_gain_privileges(job: Job):
    assert job.facts["status"]["NoNewPrivs"] == "1"


@as_root
def test_the_job_is_killed_when_its_launcher_dies(job: Job):
    assert job.facts["pdeathsig"] == 9  # SIGKILL, set again as the job's user


@as_root
def test_the_job_is_its_pid_namespaces_init(job: Job):
    assert job.facts["pid"] == 1


@as_root
def test_the_job_sees_no_process_but_its_own(job: Job):
    assert job.facts["pids"] == [1]


@as_root
def test_proc_is_mounted_anew_without_suid_devices_or_programs(job: Job):
    proc = job.mount("/proc")
    assert proc is not None
    assert (proc.fstype, proc.source) == ("proc", "proc")
    assert {"nosuid", "nodev", "noexec"} <= proc.options


@as_root
def test_the_jobs_umask_is_022_whatever_the_backends(job: Job):
    assert job.facts["umask"] == 0o022


@as_root
def test_every_shared_folder_is_a_private_tmpfs(job: Job):
    for shared in job.confinement.shared:
        seen = job.mount(shared)
        assert seen is not None, shared
        assert (seen.fstype, seen.source, seen.root) == ("tmpfs", "tmpfs", "/"), shared
        assert {"rw", "nosuid", "nodev"} <= seen.options, shared
        assert "noexec" not in seen.options, shared


@as_root
def test_every_shared_folder_is_writable_by_all_and_sticky(job: Job):
    for shared in job.confinement.shared:
        assert job.path(shared)["mode"] == stat.S_IFDIR | 0o1777, shared
        assert job.path(shared)["uid"] == 0, shared
        assert job.path(shared)["write"] == 0, shared


@as_root
def test_shared_folders_are_empty_but_for_the_jobs_own_folder(job: Job):
    # and but for the interpreter's folders when they lie in one (a checkout under /tmp)
    kept = [Path(p) for p in (*job.confinement.keep, sys.prefix, sys.base_prefix)]
    for shared in job.confinement.shared:
        inside = {p.relative_to(shared).parts[0] for p in kept if p.is_relative_to(shared)}
        expected = sorted({job.runs.name, *inside} if shared == "/tmp" else inside)
        assert job.path(shared)["list"] == expected, shared


@as_root
def test_the_folders_down_to_the_jobs_own_are_made_with_mode_755(job: Job):
    # on the host the jobs' folder is 0711; in the job's /tmp it is made anew
    runs = job.path(job.runs)
    assert (runs["mode"], runs["uid"], runs["list"]) == (stat.S_IFDIR | 0o755, 0, ["job"])


@as_root
def test_the_jobs_own_folder_is_bound_back_writable(job: Job):
    assert job.path(job.own)["list"] == ["mine.txt", "written.txt"]
    assert job.path(job.own)["write"] == 0
    own = job.mount(job.own)
    assert own is not None
    assert (own.root, "rw" in own.options) == (str(job.own), True)


@as_root
def test_what_the_job_writes_in_its_folder_is_the_backends_to_read(job: Job):
    assert job.facts  # the job has run
    assert (job.own / "written.txt").read_text() == "written by the job\n"


@as_root
def test_a_cover_is_a_tmpfs_of_mode_755(job: Job):
    locked = job.base / "locked"
    seen = job.mount(locked)
    assert seen is not None
    assert (seen.fstype, seen.source, seen.root) == ("tmpfs", "tmpfs", "/")
    assert {"nosuid", "nodev"} <= seen.options
    assert "mode=755" in seen.super_options
    assert job.path(locked)["mode"] == stat.S_IFDIR | 0o755
    assert (job.path(locked)["uid"], job.path(locked)["write"]) == (0, errno.EACCES)


@as_root
def test_a_cover_holds_only_the_paths_bound_back(job: Job):
    # not secret.txt, nor the stage
    assert job.path(job.base / "locked")["list"] == ["file.txt", "inner", "lib"]


@as_root
def test_a_cover_inside_another_is_a_plain_folder_of_the_outer_one(job: Job):
    inner = job.base / "locked/inner"
    assert job.mount(inner) is None
    assert job.path(inner)["dev"] == job.path(job.base / "locked")["dev"]
    assert job.path(inner)["mode"] == stat.S_IFDIR | 0o755
    assert job.path(inner)["list"] == ["deep"]


@as_root
def test_a_kept_folder_in_a_nested_cover_is_bound_back_read_only(job: Job):
    deep = job.base / "locked/inner/deep"
    seen = job.mount(deep)
    assert seen is not None
    assert (seen.root, "ro" in seen.options) == (str(deep), True)
    assert job.path(deep)["list"] == ["deep.txt"]
    assert job.path(deep)["write"] == errno.EROFS


@as_root
def test_a_kept_folder_is_bound_back_read_only(job: Job):
    lib = job.base / "locked/lib"
    seen = job.mount(lib)
    assert seen is not None
    assert (seen.root, "ro" in seen.options) == (str(lib), True)
    assert job.path(lib)["list"] == ["mod.txt", "sub"]
    assert job.path(lib)["write"] == errno.EROFS  # though others may write it on the host


@as_root
def test_a_kept_folder_inside_another_is_bound_back_read_only_too(job: Job):
    sub = job.base / "locked/lib/sub"
    seen = job.mount(sub)
    assert seen is not None
    assert (seen.root, "ro" in seen.options) == (str(sub), True)
    assert job.path(sub)["list"] == ["deeper.txt"]
    assert job.path(sub)["write"] == errno.EROFS


@as_root
def test_a_kept_file_is_bound_back_as_a_read_only_file(job: Job):
    kept = job.base / "locked/file.txt"
    seen = job.mount(kept)
    assert seen is not None
    assert (seen.root, "ro" in seen.options) == (str(kept), True)
    assert stat.S_ISREG(job.path(kept)["mode"])
    assert job.path(kept)["text"] == "kept file\n"
    assert job.path(kept)["write"] == errno.EROFS


@as_root
def test_the_data_directory_is_an_empty_tmpfs(job: Job):
    data = job.base / "data"
    assert job.path(data)["list"] == []
    assert job.path(data)["mode"] == stat.S_IFDIR | 0o755
    assert (job.path(data)["uid"], job.path(data)["write"]) == (0, errno.EACCES)


@as_root
def test_the_data_directorys_tmpfs_is_small_and_runs_nothing(job: Job):
    data = job.base / "data"
    seen = job.mount(data)
    assert seen is not None
    assert (seen.fstype, seen.source, seen.root) == ("tmpfs", "tmpfs", "/")
    assert {"nosuid", "nodev", "noexec"} <= seen.options
    assert {"size=16k", "mode=755"} <= seen.super_options
    assert job.path(data)["size"] == 16 * 1024


@as_root
def test_a_missing_path_to_hide_is_left_alone(job: Job):
    assert job.facts  # the launcher did not try to mount on it
    assert job.mount(job.base / "gone") is None


@as_root
def test_the_stage_is_left_empty_on_the_host(job: Job):
    assert job.facts
    assert list(job.stage.iterdir()) == []
    assert not os.path.ismount(job.stage)


# -- a launcher command line of another's making ------------------------------------------
@pytest.fixture(scope="module")
def shell_job(base: Path) -> subprocess.CompletedProcess[str]:
    """Nothing covered or kept; the stage in sight of the job; run with capabilities to
    inherit, a plan whose group differs from the user, and the command given without
    ``--``."""
    top = base / "shell"
    make_tree(top, {"": (0o755, None), "stage": (0o700, None), "own": (0o700, None)})
    confinement = Confinement(ids=JOB_IDS, tools=tools())
    command = confinement.wrap(
        SHELL_PROBE, uid=JOB_IDS[1], run_dir=top / "own", stage=top / "stage"
    )
    command = with_plan(command, gid=JOB_IDS[2])
    at = len(command) - len(SHELL_PROBE) - 1
    assert command[at] == "--"
    del command[at]
    return launch([tools()["setpriv"], "--inh-caps=+chown,+kill", "--", *command])


def shell_facts(done: subprocess.CompletedProcess[str]) -> tuple[dict[str, str], str]:
    assert (done.returncode, done.stderr) == (0, ""), done
    status, mountinfo = done.stdout.split("==\n")
    rows = dict(row.split(":", 1) for row in status.splitlines())
    return {key: value.strip() for key, value in rows.items()}, mountinfo


@as_root
def test_the_command_may_follow_the_options_without_a_separator(
    shell_job: subprocess.CompletedProcess[str],
):
    assert (shell_job.returncode, shell_job.stderr) == (0, "")
    assert shell_job.stdout.startswith("Name:\tcat\n")  # the shell ran its command


@as_root
def test_the_job_runs_with_the_plans_group(shell_job: subprocess.CompletedProcess[str]):
    status, _ = shell_facts(shell_job)
    assert status["Uid"].split() == ["300101"] * 4
    assert status["Gid"].split() == ["300102"] * 4


@as_root
def test_the_job_inherits_no_capabilities_the_launcher_had(
    shell_job: subprocess.CompletedProcess[str],
):
    status, _ = shell_facts(shell_job)
    assert status["CapInh"] == NO_CAPABILITIES


@as_root
def test_the_stage_is_a_small_tmpfs_only_root_may_enter(
    shell_job: subprocess.CompletedProcess[str], base: Path
):
    _, mountinfo = shell_facts(shell_job)
    stage = seen_at(mountinfo, base / "shell/stage")
    assert stage is not None
    assert (stage.fstype, stage.source, stage.root) == ("tmpfs", "tmpfs", "/")
    assert {"nosuid", "nodev"} <= stage.options
    assert {"size=1024k", "mode=700"} <= stage.super_options


@as_root
def test_nothing_stays_mounted_in_the_stage(
    shell_job: subprocess.CompletedProcess[str], base: Path
):
    # the job's folder lies in no cover: it is not bound back (nor left in the stage)
    _, mountinfo = shell_facts(shell_job)
    assert mounted_below(mountinfo, base / "shell/stage") == []
    assert seen_at(mountinfo, base / "shell/own") is None


# -- refusals --------------------------------------------------------------------------
@pytest.fixture
def minimal(base: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Path, Path]]:
    """A job folder and an empty stage only root may enter."""
    top = base / request.node.name.replace("/", "-")
    make_tree(top, {"": (0o755, None), "stage": (0o700, None), "own": (0o700, None)})
    yield top / "own", top / "stage"


@as_root
def test_a_failed_mount_stops_the_launch(minimal: tuple[Path, Path]):
    own, stage = minimal
    confinement = Confinement(ids=JOB_IDS, tools={**tools(), "mount": "/bin/false"})
    command = confinement.wrap(["/bin/true"], uid=JOB_IDS[3], run_dir=own, stage=stage)
    done = launch(command)
    assert (done.returncode, done.stdout) == (EXIT_NOT_CONFINED, "")
    assert done.stderr == (
        "isolation: cannot confine the job: Command '['/bin/false', '-t', 'tmpfs', '-o', "
        f"'mode=0700,size=1m,nosuid,nodev', 'tmpfs', '{stage}']' returned non-zero exit "
        "status 1.\n"
    )


@as_root
def test_a_mount_tool_that_cannot_run_stops_the_launch(minimal: tuple[Path, Path]):
    own, stage = minimal
    confinement = Confinement(ids=JOB_IDS, tools={**tools(), "mount": "/nonexistent/mount"})
    command = confinement.wrap(["/bin/true"], uid=JOB_IDS[3], run_dir=own, stage=stage)
    done = launch(command)
    assert (done.returncode, done.stdout) == (EXIT_NOT_CONFINED, "")
    assert done.stderr == (
        "isolation: cannot confine the job: [Errno 2] No such file or directory: "
        "'/nonexistent/mount'\n"
    )


@as_root
def test_a_setpriv_that_cannot_run_stops_the_launch(minimal: tuple[Path, Path], base: Path):
    own, stage = minimal
    missing = base / "no-setpriv"
    confinement = Confinement(ids=JOB_IDS, tools=tools())
    command = confinement.wrap(["/bin/true"], uid=JOB_IDS[3], run_dir=own, stage=stage)
    done = launch(with_plan(command, setpriv=str(missing)))
    assert (done.returncode, done.stdout) == (EXIT_NOT_CONFINED, "")
    assert done.stderr == (
        "isolation: cannot drop to the job's user: [Errno 2] No such file or directory\n"
    )


@as_root
def test_the_backends_command_line_runs_the_launcher_module(minimal: tuple[Path, Path]):
    own, stage = minimal
    command = Confinement(ids=JOB_IDS, tools=tools()).wrap(
        ["/bin/sh", "-c", "echo confined as $(id -u)"], uid=JOB_IDS[3], run_dir=own, stage=stage
    )
    done = launch(command, as_written=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "confined as 300103\n", "")


@as_root
def test_the_launcher_refuses_to_run_no_command(minimal: tuple[Path, Path]):
    own, stage = minimal
    command = Confinement(ids=JOB_IDS, tools=tools()).wrap(
        [], uid=JOB_IDS[3], run_dir=own, stage=stage
    )
    done = launch(command)
    assert (done.returncode, done.stdout) == (EXIT_NOT_CONFINED, "")
    assert done.stderr == (
        "isolation: must run as root, as a PID namespace's init, with a command\n"
    )


# -- main() in this process ------------------------------------------------------------
@pytest.fixture
def harmless_plan(tmp_path: Path) -> Iterator[list[str]]:
    """Launcher options whose tools do nothing, should a guard let them through."""
    plan = {
        "uid": JOB_IDS[3],
        "gid": JOB_IDS[3],
        "own": str(tmp_path / "own"),
        "keep": [],
        "covers": [],
        "shared": [],
        "hide": [],
        "mount": "/bin/false",
        "setpriv": str(tmp_path / "no-setpriv"),
    }
    umask = os.umask(0o022)
    os.umask(umask)
    yield ["--plan", json.dumps(plan), "--stage", str(tmp_path / "stage")]
    os.umask(umask)


def test_the_launcher_refuses_to_run_as_anything_but_a_pid_namespaces_init(
    harmless_plan: list[str], capsys: pytest.CaptureFixture[str]
):
    assert isolation.main([*harmless_plan, "--", "/bin/true"]) == EXIT_NOT_CONFINED
    assert capsys.readouterr() == (
        "",
        "isolation: must run as root, as a PID namespace's init, with a command\n",
    )


def run_as_init(uid: int, argv: list[str]) -> tuple[int, str]:
    """``isolation.main(argv)`` in a forked child that is a new PID namespace's init, as
    ``uid``: its exit code and what it wrote on stderr."""
    libc = ctypes.CDLL(None, use_errno=True)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # unshare a PID namespace: this child's first child is its init
        code = 98
        try:
            os.close(read_end)
            if libc.unshare(CLONE_NEWPID) == 0:
                init = os.fork()
                if init == 0:
                    code = 97
                    try:
                        os.setgroups([])
                        os.setresgid(uid, uid, uid)
                        os.setresuid(uid, uid, uid)
                        sys.stderr = open(write_end, "w", closefd=False)
                        code = isolation.main(argv)
                        sys.stderr.flush()
                    finally:
                        os._exit(code)
                code = os.waitstatus_to_exitcode(os.waitpid(init, 0)[1])
        finally:
            os._exit(code)
    os.close(write_end)
    with open(read_end) as f:
        stderr = f.read()
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), stderr


@as_root
def test_the_launcher_refuses_to_run_as_another_user_than_root(harmless_plan: list[str]):
    assert run_as_init(JOB_IDS[3], [*harmless_plan, "--", "/bin/true"]) == (
        EXIT_NOT_CONFINED,
        "isolation: must run as root, as a PID namespace's init, with a command\n",
    )


@as_root
def test_the_init_that_is_root_goes_on_to_confine(harmless_plan: list[str]):
    # the same, as root: past the guard, the harmless mount tool fails
    code, stderr = run_as_init(0, [*harmless_plan, "--", "/bin/true"])
    assert (code, stderr.startswith("isolation: cannot confine the job: ")) == (
        EXIT_NOT_CONFINED,
        True,
    )


@pytest.mark.parametrize("missing", ["--plan", "--stage"])
def test_the_launcher_needs_a_plan_and_a_stage(
    harmless_plan: list[str], missing: str, capsys: pytest.CaptureFixture[str]
):
    at = harmless_plan.index(missing)
    argv = harmless_plan[:at] + harmless_plan[at + 2 :]
    with pytest.raises(SystemExit) as refused:
        isolation.main([*argv, "--", "/bin/true"])
    assert refused.value.code == 2
    assert f"the following arguments are required: {missing}" in capsys.readouterr().err


def test_the_launcher_says_what_it_is(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as done:
        isolation.main(["--help"])
    assert done.value.code == 0
    assert "\n\nConfine a ManaTEE job (run by the backend).\n\n" in capsys.readouterr().out
