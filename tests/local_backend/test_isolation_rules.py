"""The rules of job confinement, checked fast: what `plan` decides from the folders it is
shown, the exact command line `Confinement.wrap` builds, how `JobIds` hands out and takes
back the job users' ids, and the small checks they rest on.

No notebook runs and no backend here (test_confinement.py and test_jobs_apart.py run real
confined jobs); these tests call the functions on small real trees, lock folders and
processes of their own, so that each rule is pinned by a test quick enough to rerun for
every mutant (``python -m tests.mutation isolation``). Tests that need root (folders in
/run, processes as another user) are skipped otherwise; CI runs as root.
"""

from __future__ import annotations

import grp
import io
import json
import logging
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jupyterlab_manatee.local_backend import isolation
from jupyterlab_manatee.local_backend.isolation import (
    Confinement,
    IsolationError,
    JobIds,
    _id_collisions,
    _inside,
    _others_may,
    plan,
    processes_of,
    shared_folders,
)

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (CI runs as root)")
#: Ids no user, group or process of a test machine has.
FREE_IDS = range(3_999_000_000, 3_999_000_003)
#: The folders all users may write that every job gets a private one of.
SYSTEM_SHARED = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock")


def world_writable(names: tuple[str, ...]) -> set[str]:
    """Which of ``names`` this machine has as folders every user may write (resolved)."""
    return {
        str(Path(n).resolve()) for n in names if os.path.isdir(n) and os.stat(n).st_mode & 0o002
    }


# -- _inside, _others_may -----------------------------------------------------------------
def test_a_folder_is_inside_itself():
    assert _inside(Path("/a/b"), Path("/a/b"))


def test_a_path_below_a_folder_is_inside_it():
    assert _inside(Path("/a/b/c/d"), Path("/a/b"))


def test_a_sibling_sharing_a_name_prefix_is_not_inside():
    assert not _inside(Path("/a/bc"), Path("/a/b"))


def test_a_folder_is_not_inside_its_own_child():
    assert not _inside(Path("/a"), Path("/a/b"))


def test_others_may_needs_every_bit_asked_for(tmp_path: Path):
    folder = tmp_path / "f"
    folder.mkdir()
    folder.chmod(0o754)  # others may read, not enter
    assert _others_may(folder, 0o004)
    assert not _others_may(folder, 0o005)
    folder.chmod(0o755)
    assert _others_may(folder, 0o005)


def test_others_may_nothing_on_a_missing_path(tmp_path: Path):
    assert not _others_may(tmp_path / "missing", 0o004)


def test_others_may_judges_what_a_link_points_to(tmp_path: Path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    (tmp_path / "link").symlink_to(private)
    assert not _others_may(tmp_path / "link", 0o001)


# -- shared_folders --------------------------------------------------------------------------
def test_shared_folders_are_the_world_writable_ones_resolved_and_sorted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(tempfile, "tempdir", "/")  # a folder that is not world-writable
    open_ = tmp_path / "open"
    open_.mkdir()
    open_.chmod(0o1777)
    closed = tmp_path / "closed"
    closed.mkdir()
    closed.chmod(0o755)
    a_file = tmp_path / "file"
    a_file.touch()
    a_file.chmod(0o777)
    (tmp_path / "link").symlink_to(open_)
    found = shared_folders([closed, tmp_path / "link", a_file, tmp_path / "missing"])
    assert found == sorted(Path(p) for p in world_writable(SYSTEM_SHARED) | {str(open_)})


def test_shared_folders_include_the_temp_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    tmp.chmod(0o1777)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    assert tmp in shared_folders()
    assert shared_folders() == sorted(Path(p) for p in world_writable(SYSTEM_SHARED) | {str(tmp)})


# -- _id_collisions ------------------------------------------------------------------------
def test_root_collides_as_user_and_group():
    assert _id_collisions(range(0, 1))[:2] == ["user root (0)", "group root (0)"]


@pytest.fixture
def id_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[list[tuple[str, int]], list[tuple[str, int]], str | None, str | None], None]:
    """Stand-in user, group and subordinate-id tables (a supplement: the real ones are the
    machine's, which the tests cannot change)."""

    def use(
        users: list[tuple[str, int]],
        groups: list[tuple[str, int]],
        subuid: str | None,
        subgid: str | None,
    ) -> None:
        monkeypatch.setattr(
            pwd,
            "getpwall",
            lambda: [pwd.struct_passwd((n, "x", i, i, "", "/", "/bin/sh")) for n, i in users],
        )
        monkeypatch.setattr(
            grp, "getgrall", lambda: [grp.struct_group((n, "x", i, [])) for n, i in groups]
        )
        tables = {}
        for name, text in (("/etc/subuid", subuid), ("/etc/subgid", subgid)):
            where = tmp_path / name.rsplit("/", 1)[1]
            if text is not None:
                where.write_text(text)
            tables[name] = where
        monkeypatch.setattr(isolation, "Path", lambda name: tables[name])

    return use


def test_users_and_groups_in_the_range_collide_at_its_ends(id_tables):
    users = [("below", 99), ("first", 100), ("last", 109), ("above", 110)]
    groups = [("g-below", 99), ("g-first", 100), ("g-last", 109), ("g-above", 110)]
    id_tables(users, groups, None, None)
    assert _id_collisions(range(100, 110)) == [
        "user first (100)",
        "user last (109)",
        "group g-first (100)",
        "group g-last (109)",
    ]


def test_subordinate_ids_overlapping_the_range_collide(id_tables):
    subuid = (
        "before:90:10\n"  # 90-99: ends just before
        "  touch-first:95:6  \n"  # 95-100
        "after:110:5\n"  # starts just after
        "touch-last:109:1\n"
    )
    id_tables([], [], subuid, "around:50:100\n")
    assert _id_collisions(range(100, 110)) == [
        "/etc/subuid entry touch-first:95:6",
        "/etc/subuid entry touch-last:109:1",
        "/etc/subgid entry around:50:100",
    ]


def test_malformed_subordinate_id_lines_are_skipped(id_tables):
    subuid = "\nbad\nx:100:5:9\nx:a:5\nx:100:b\nx::5\nok:100:1\n"
    id_tables([], [], subuid, None)
    assert _id_collisions(range(100, 110)) == ["/etc/subuid entry ok:100:1"]


def test_a_missing_subordinate_id_table_is_no_collision(id_tables):
    id_tables([], [], None, "g:105:1\n")
    assert _id_collisions(range(100, 110)) == ["/etc/subgid entry g:105:1"]


# -- Confinement ---------------------------------------------------------------------------
ISOLATED = Confinement(
    ids=range(300, 310),
    keep=("/root/.pyenv/versions/3.11",),
    covers=("/root",),
    shared=("/tmp", "/var/tmp"),
    hide=("/srv/data",),
    tools={"unshare": "/bin/unshare", "mount": "/bin/mount", "setpriv": "/bin/setpriv"},
)


def test_unconfined_jobs_come_with_a_warning_about_the_signing_key():
    assert not Confinement().isolated
    assert "can read the data directory, including the token signing key" in str(
        Confinement().warning
    )


def test_confined_jobs_need_no_warning():
    assert ISOLATED.isolated
    assert ISOLATED.warning is None


def test_unconfined_commands_run_as_they_are():
    command = ["python", "-m", "executor"]
    wrapped = Confinement().wrap(command, uid=None, run_dir=Path("/r"), stage=Path("/s"))
    assert wrapped == ["python", "-m", "executor"]


def test_the_confined_command_line():
    wrapped = ISOLATED.wrap(
        ["python", "-m", "executor"], uid=305, run_dir=Path("/runs/j1"), stage=Path("/stage/j1")
    )
    assert wrapped[:16] == [
        "/bin/setpriv",
        "--pdeathsig",
        "KILL",
        "--",
        "/bin/unshare",
        "--pid",
        "--kill-child",
        "--mount",
        "--ipc",
        "--propagation",
        "private",
        "--",
        sys.executable,
        "-m",
        "jupyterlab_manatee.local_backend.isolation",
        "--plan",
    ]
    assert wrapped[17:] == ["--stage", "/stage/j1", "--", "python", "-m", "executor"]
    assert json.loads(wrapped[16]) == {
        "uid": 305,
        "gid": 305,
        "own": "/runs/j1",
        "keep": ["/root/.pyenv/versions/3.11"],
        "covers": ["/root"],
        "shared": ["/tmp", "/var/tmp"],
        "hide": ["/srv/data"],
        "mount": "/bin/mount",
        "setpriv": "/bin/setpriv",
    }


@pytest.mark.parametrize("uid", [None, 299, 310])
def test_a_confined_command_needs_a_job_users_id(uid: int | None):
    with pytest.raises(AssertionError):
        ISOLATED.wrap(["true"], uid=uid, run_dir=Path("/r"), stage=Path("/s"))


@as_root
def test_this_util_linux_takes_the_wrappers_options():
    tools = {name: shutil.which(name) for name in ("unshare", "mount", "setpriv")}
    confinement = Confinement(ids=range(300, 310), tools={k: str(v) for k, v in tools.items()})
    wrapped = confinement.wrap(["true"], uid=300, run_dir=Path("/r"), stage=Path("/s"))
    launcher = wrapped.index(sys.executable)
    # the options up to the launcher, running `true` instead (the launcher mounts)
    done = subprocess.run([*wrapped[:launcher], "true"], capture_output=True, timeout=30)
    assert (done.returncode, done.stderr) == (0, b"")


# -- processes_of ---------------------------------------------------------------------------
def test_processes_of_finds_this_process():
    assert os.getpid() in processes_of(os.getuid())


@pytest.fixture
def process_as() -> Iterator[Callable[..., subprocess.Popen]]:
    """Start processes under other uids, each running once it has said so; all are
    killed and reaped after the test."""
    started: list[subprocess.Popen] = []

    def start(*setpriv_args: str, program: list[str] | None = None) -> subprocess.Popen:
        program = program or ["/bin/sh", "-c", "echo ready; exec sleep 60"]
        proc = subprocess.Popen(
            ["setpriv", *setpriv_args, "--", *program], stdout=subprocess.PIPE, cwd="/"
        )
        started.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait(timeout=10)


def as_user(uid: int) -> tuple[str, ...]:
    return (f"--reuid={uid}", f"--regid={uid}", "--clear-groups")


@as_root
def test_processes_of_finds_the_processes_of_that_user_only(process_as):
    proc = process_as(*as_user(FREE_IDS[0]))
    process_as(*as_user(FREE_IDS[1]))
    assert processes_of(FREE_IDS[0]) == [proc.pid]


@as_root
def test_processes_of_counts_a_real_uid_alone(process_as):
    # real uid the job's, effective uid still root's: a process of the job's user still
    program = [sys.executable, "-c", "print('ready', flush=True); import time; time.sleep(60)"]
    proc = process_as(f"--ruid={FREE_IDS[0]}", program=program)
    assert Path(f"/proc/{proc.pid}/status").read_text().count(f"\t{FREE_IDS[0]}\t") == 1
    assert processes_of(FREE_IDS[0]) == [proc.pid]


@as_root
def test_processes_of_leaves_out_zombies():
    proc = subprocess.Popen(["setpriv", *as_user(FREE_IDS[0]), "--", "/bin/true"], cwd="/")
    try:
        # ended but not reaped: a zombie
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        assert "State:\tZ" in Path(f"/proc/{proc.pid}/status").read_text()
        assert processes_of(FREE_IDS[0]) == []
    finally:
        proc.wait(timeout=10)


def test_processes_of_reads_a_process_whose_name_is_not_utf8(tmp_path: Path):
    shell = tmp_path / os.fsdecode(b"sh\xff")  # the kernel shows the name's bytes as they are
    shell.symlink_to("/bin/sh")
    proc = subprocess.Popen(
        [shell, "-c", "echo ready; read line"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        assert {os.getpid(), proc.pid} <= set(processes_of(os.getuid()))
    finally:
        proc.communicate(b"\n", timeout=10)


def test_processes_of_skips_a_process_that_ended_while_it_looked(monkeypatch: pytest.MonkeyPatch):
    mine = f"/proc/{os.getpid()}/status"

    def racing_open(path: str, *args, **kwargs):
        if path != mine:  # every other process ended between the listing and the reading
            raise FileNotFoundError(path)
        return open(path, *args, **kwargs)

    monkeypatch.setattr(isolation, "open", racing_open, raising=False)
    assert processes_of(os.getuid()) == [os.getpid()]


def test_a_status_without_uids_is_nobodys_and_one_without_a_state_is_live(
    monkeypatch: pytest.MonkeyPatch,
):
    uid = FREE_IDS[0]
    mine = f"/proc/{os.getpid()}/status"

    def odd_status(path: str, *args, **kwargs) -> io.StringIO:
        if path == mine:
            return io.StringIO(f"Name:\tjob\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n")
        return io.StringIO("Name:\tother\n")

    monkeypatch.setattr(isolation, "open", odd_status, raising=False)
    assert processes_of(uid) == [os.getpid()]


# -- JobIds -------------------------------------------------------------------------------
@pytest.fixture
def locks(tmp_path: Path) -> Path:
    return tmp_path / "locks"


def test_take_hands_out_the_lowest_free_id(locks: Path):
    ids = JobIds(FREE_IDS, locks)
    assert [ids.take(), ids.take()] == [FREE_IDS[0], FREE_IDS[1]]
    ids.close()


def test_take_makes_a_private_lock_folder_and_files(locks: Path):
    ids = JobIds(FREE_IDS, locks)
    uid = ids.take()
    assert locks.stat().st_mode & 0o777 == 0o700
    assert (locks / str(uid)).stat().st_mode & 0o777 == 0o600
    ids.close()


def test_two_holders_of_one_lock_folder_never_hand_out_the_same_id(locks: Path):
    first, second = JobIds(FREE_IDS, locks), JobIds(FREE_IDS, locks)
    assert [first.take(), second.take(), first.take()] == list(FREE_IDS)
    first.close()
    second.close()


def test_take_refuses_when_every_id_is_in_use(locks: Path):
    ids = JobIds(FREE_IDS, locks)
    for _ in FREE_IDS:
        ids.take()
    with pytest.raises(IsolationError) as refused:
        ids.take()
    assert str(refused.value) == "every job user (3999000000-3999000002) is in use"
    ids.close()


@pytest.mark.parametrize("mode", [0o755, 0o701, 0o720])
def test_take_refuses_a_lock_folder_others_may_enter(locks: Path, mode: int):
    locks.mkdir()
    locks.chmod(mode)
    with pytest.raises(IsolationError, match="is not a private folder of this user"):
        JobIds(FREE_IDS, locks).take()


def test_take_refuses_a_lock_folder_that_is_a_link(locks: Path, tmp_path: Path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    locks.symlink_to(real)
    with pytest.raises(IsolationError, match="is not a private folder of this user"):
        JobIds(FREE_IDS, locks).take()


@as_root
def test_take_refuses_a_lock_folder_of_another_user(locks: Path):
    locks.mkdir(mode=0o700)
    os.chown(locks, 65534, 65534)
    with pytest.raises(IsolationError, match="is not a private folder of this user"):
        JobIds(FREE_IDS, locks).take()


def test_take_does_not_follow_a_link_in_place_of_a_lock_file(locks: Path, tmp_path: Path):
    locks.mkdir(mode=0o700)
    (locks / str(FREE_IDS[0])).symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError):
        JobIds(FREE_IDS, locks).take()
    assert not (tmp_path / "elsewhere").exists()


@as_root
def test_take_skips_an_id_whose_user_still_has_processes(
    locks: Path, process_as, caplog: pytest.LogCaptureFixture
):
    process_as(*as_user(FREE_IDS[0]))
    ids = JobIds(FREE_IDS, locks)
    with caplog.at_level(logging.WARNING, logger=isolation.__name__):
        assert ids.take() == FREE_IDS[1]
    assert f"job user {FREE_IDS[0]} still has processes: not handed out" in caplog.messages
    ids.close()


def test_an_id_given_back_is_handed_out_again(locks: Path, tmp_path: Path):
    first, second = JobIds(FREE_IDS, locks), JobIds(FREE_IDS, locks)
    uid = first.take()
    assert first.give_back(uid, tmp_path / "removed-run-dir", wait=0) is True
    assert second.take() == uid
    second.close()


def test_an_id_whose_folder_remains_is_kept_out_of_use(locks: Path, tmp_path: Path):
    first, second = JobIds(FREE_IDS, locks), JobIds(FREE_IDS, locks)
    uid = first.take()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    assert first.give_back(uid, run_dir, wait=0) is False
    assert [first.take(), second.take()] == [FREE_IDS[1], FREE_IDS[2]]
    first.close()
    second.close()


def test_a_dangling_link_in_place_of_the_folder_keeps_the_id_out_of_use(
    locks: Path, tmp_path: Path
):
    ids = JobIds(FREE_IDS, locks)
    uid = ids.take()
    (tmp_path / "run").symlink_to(tmp_path / "gone")
    assert ids.give_back(uid, tmp_path / "run", wait=0) is False
    ids.close()


def test_giving_back_an_id_not_held_frees_nothing(locks: Path, tmp_path: Path):
    first, second = JobIds(FREE_IDS, locks), JobIds(FREE_IDS, locks)
    uid = first.take()
    assert second.give_back(uid, tmp_path / "removed", wait=0) is True
    assert second.take() == FREE_IDS[1]  # first still holds FREE_IDS[0]
    first.close()
    second.close()


@as_root
def test_an_id_whose_user_still_has_processes_is_kept_out_of_use(
    locks: Path, tmp_path: Path, process_as, caplog: pytest.LogCaptureFixture
):
    ids = JobIds(FREE_IDS, locks)
    uid = ids.take()
    process_as(*as_user(uid))
    with caplog.at_level(logging.ERROR, logger=isolation.__name__):
        assert ids.give_back(uid, tmp_path / "removed", wait=0) is False
    assert f"job user {uid} is kept out of use: its job left processes or files" in (
        caplog.messages
    )
    assert JobIds(FREE_IDS, locks).take() == FREE_IDS[1]
    ids.close()


@as_root
def test_give_back_waits_for_the_jobs_last_processes(locks: Path, tmp_path: Path, process_as):
    ids = JobIds(FREE_IDS, locks)
    uid = ids.take()
    process_as(*as_user(uid), program=["/bin/sh", "-c", "echo ready; exec sleep 0.3"])
    assert processes_of(uid)
    start = time.monotonic()
    assert ids.give_back(uid, tmp_path / "removed", wait=20) is True
    assert processes_of(uid) == []
    assert time.monotonic() - start < 10  # returned when they ended, not at the deadline
    ids.close()


class Clock:
    """A stand-in for the time module: sleeping moves its clock on at once (to the
    microsecond, as a real clock's resolution would)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now = round(self.now + seconds, 6)


def test_give_back_gives_lingering_processes_ten_seconds_looking_every_20_ms(
    locks: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    ids = JobIds(FREE_IDS, locks)
    uid = ids.take()
    clock = Clock()
    monkeypatch.setattr(isolation, "time", clock)
    monkeypatch.setattr(isolation, "processes_of", lambda uid: [4242])  # they never end
    assert ids.give_back(uid, tmp_path / "removed") is False
    assert clock.slept == [0.02] * 500  # the last look is at the deadline, not after it
    ids.close()


def test_close_frees_every_id(locks: Path):
    ids = JobIds(FREE_IDS, locks)
    ids.take()
    ids.take()
    ids.close()
    other = JobIds(FREE_IDS, locks)
    assert [ids.take(), other.take()] == [FREE_IDS[0], FREE_IDS[1]]
    ids.close()
    other.close()


# -- plan -----------------------------------------------------------------------------------
class Tree:
    """A small machine's worth of folders in a folder others may enter (not in a folder
    all users share, not in pytest's private one)::

        base/ 755
          data/ 755             the data directory (inside.py in it)
          open/lib/ 755         a library others may read (mod.py 644)
          locked/ 700           a folder others cannot enter, like /root
            lib/sub/ 755, file.py 644, inner/ 700 /deep/ 755
          secret.py 600, peek/ 744 (readable, not enterable)
          runs/ 755             the jobs' folders
          tmp/ 1777             the temp folder (a shared one)
            pkg/ 755
          bin/                  unshare, mount and setpriv (links to the real ones)
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        for folder, mode in [
            ("data", 0o755),
            ("open", 0o755),
            ("open/lib", 0o755),
            ("locked", 0o700),
            ("locked/lib", 0o755),
            ("locked/lib/sub", 0o755),
            ("locked/inner", 0o700),
            ("locked/inner/deep", 0o755),
            ("peek", 0o744),
            ("runs", 0o755),
            ("tmp", 0o1777),
            ("tmp/pkg", 0o755),
            ("bin", 0o755),
        ]:
            (base / folder).mkdir()
            (base / folder).chmod(mode)
        for file, mode in [
            ("data/inside.py", 0o644),
            ("open/lib/mod.py", 0o644),
            ("locked/file.py", 0o644),
            ("secret.py", 0o600),
        ]:
            (base / file).write_text("")
            (base / file).chmod(mode)
        for tool in ("unshare", "mount", "setpriv"):
            (base / "bin" / tool).symlink_to(str(shutil.which(tool)))

    def __truediv__(self, name: str) -> Path:
        return self.base / name

    def plan(self, *reachable: str, runs: str = "runs", **kwargs) -> Confinement:
        kwargs.setdefault("euid", 0)
        kwargs.setdefault("ids", FREE_IDS)
        return plan(
            data_dir=self / "data",
            reachable=[self / r for r in reachable],
            runs_root=self / runs,
            **kwargs,
        )


@pytest.fixture
def tree(monkeypatch: pytest.MonkeyPatch) -> Iterator[Tree]:
    if os.geteuid() != 0:
        pytest.skip("the tree is made in /run, which only root may write (CI runs as root)")
    base = Path(tempfile.mkdtemp(prefix="manatee-isolation-rules-", dir="/run"))
    base.chmod(0o755)
    try:
        tree = Tree(base)
        monkeypatch.setattr(tempfile, "tempdir", str(tree / "tmp"))
        monkeypatch.setenv("PATH", str(tree / "bin"))
        yield tree
    finally:
        shutil.rmtree(base)


def test_not_root_jobs_run_unconfined_whatever_they_need(tree: Tree):
    assert tree.plan("data/inside.py", "secret.py", euid=1000) == Confinement()


@as_root
def test_root_confines_jobs(tree: Tree):
    assert tree.plan("open/lib", euid=None).isolated


def test_jobs_get_the_ids_asked_for(tree: Tree):
    assert tree.plan("open/lib").ids == FREE_IDS


def test_jobs_get_the_default_ids_unless_asked(tree: Tree):
    assert tree.plan("open/lib", ids=isolation.DEFAULT_JOB_IDS).ids == range(200_000, 201_000)
    assert plan(data_dir=tree / "data", reachable=[], runs_root=tree / "runs", euid=0).ids == (
        range(200_000, 201_000)
    )


def test_the_data_directory_is_hidden_by_its_real_path(tree: Tree):
    confinement = plan(
        data_dir=tree / "open" / ".." / "data",
        reachable=[],
        runs_root=tree / "runs",
        euid=0,
        ids=FREE_IDS,
    )
    assert confinement.hide == (str(tree / "data"),)


def test_the_tools_are_found_on_the_path(tree: Tree):
    assert tree.plan().tools == {
        "unshare": str(tree / "bin" / "unshare"),
        "mount": str(tree / "bin" / "mount"),
        "setpriv": str(tree / "bin" / "setpriv"),
    }


def test_missing_tools_are_refused_by_name(tree: Tree):
    (tree / "bin" / "setpriv").unlink()
    (tree / "bin" / "unshare").unlink()
    with pytest.raises(IsolationError) as refused:
        tree.plan()
    assert str(refused.value) == (
        "running as root, jobs must be confined, but unshare, setpriv (util-linux) is not installed"
    )


@pytest.mark.parametrize(
    "ids",
    [
        range(5, 5),
        range(3_999_000_000, 3_999_000_010, 2),
        range(0, 10),
        range(2**32 - 2, 2**32),
    ],
    ids=["empty", "step", "zero", "too-high"],
)
def test_ids_that_are_not_a_range_of_user_ids_are_refused(tree: Tree, ids: range):
    with pytest.raises(IsolationError) as refused:
        tree.plan(ids=ids)
    assert str(refused.value) == f"the job users' ids {ids} are not a range of user ids"


def test_the_highest_user_id_may_be_used(tree: Tree):
    assert tree.plan(ids=range(2**32 - 2, 2**32 - 1)).ids == range(2**32 - 2, 2**32 - 1)


def test_the_lowest_user_id_may_be_used(tree: Tree, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(isolation, "_id_collisions", lambda ids: [])  # (uid 1 is daemon's)
    assert tree.plan(ids=range(1, 5)).ids == range(1, 5)


@pytest.mark.parametrize(
    ("taken", "named"),
    [
        (["user a (7)"], "user a (7) use some"),
        (["a", "b", "c"], "a, b, c use some"),
        (["a", "b", "c", "d"], "a, b, c and more use some"),
    ],
)
def test_collisions_are_named_three_at_most(
    tree: Tree, monkeypatch: pytest.MonkeyPatch, taken: list[str], named: str
):
    monkeypatch.setattr(isolation, "_id_collisions", lambda ids: taken)
    with pytest.raises(IsolationError) as refused:
        tree.plan(ids=range(100, 110))
    assert str(refused.value) == (
        f"the job users' ids 100-109 must belong to no one, but {named}: choose another range"
    )


def test_collisions_are_looked_up_in_the_machines_tables(tree: Tree):
    with pytest.raises(IsolationError) as refused:
        tree.plan(ids=range(1, 2**16))
    assert str(refused.value).startswith("the job users' ids 1-65535 must belong to no one, but ")
    assert str(refused.value).endswith(" and more use some: choose another range")


@pytest.mark.parametrize("inside", ["data/inside.py", "data"])
def test_a_path_inside_the_data_directory_is_refused(tree: Tree, inside: str):
    with pytest.raises(IsolationError) as refused:
        tree.plan("open/lib", inside)
    assert str(refused.value) == (
        f"{tree / inside} is inside the data directory, which jobs cannot see"
    )


def test_a_shared_folder_cannot_be_given_to_jobs(tree: Tree):
    with pytest.raises(IsolationError) as refused:
        tree.plan("tmp")
    assert str(refused.value) == (
        f"jobs cannot be given {tree / 'tmp'}: every user may write there, and each job gets "
        "a private one"
    )


@pytest.mark.parametrize("unreadable", ["secret.py", "peek"])
def test_a_path_others_cannot_read_is_refused(tree: Tree, unreadable: str):
    with pytest.raises(IsolationError) as refused:
        tree.plan("open/lib", unreadable)
    assert str(refused.value) == (
        f"jobs run as an unprivileged user, who cannot read {tree / unreadable} (make it "
        "readable by others, or use an interpreter outside private folders)"
    )


def test_missing_paths_are_left_out(tree: Tree):
    # plan looks at the paths in a set's order, which the hash seed picks: with 40 missing
    # ones, the real one comes first about once in 41 orders; five sets of other names
    # (so other orders) make that about once in 10**8
    for batch in range(5):
        missing = [f"missing-{batch}-{n}" for n in range(40)]
        confinement = tree.plan(*missing, "locked/file.py")
        assert (confinement.covers, confinement.keep) == (
            (str(tree / "locked"),),
            (str(tree / "locked" / "file.py"),),
        ), batch


def test_paths_others_may_reach_need_no_cover(tree: Tree):
    confinement = tree.plan("open/lib", "open/lib/mod.py")
    assert (confinement.covers, confinement.keep) == ((), ())


def test_a_folder_others_cannot_enter_is_covered_and_the_paths_in_it_kept(tree: Tree):
    confinement = tree.plan("open/lib", "locked/lib/sub", "locked/file.py")
    assert confinement.covers == (str(tree / "locked"),)
    assert confinement.keep == (str(tree / "locked/file.py"), str(tree / "locked/lib/sub"))


def test_the_outermost_folder_others_cannot_enter_is_the_cover(tree: Tree):
    confinement = tree.plan("locked/inner/deep")
    assert confinement.covers == (str(tree / "locked"),)
    assert confinement.keep == (str(tree / "locked/inner/deep"),)


def test_a_kept_path_inside_another_comes_with_it(tree: Tree):
    confinement = tree.plan("locked/lib/sub", "locked/lib", "locked/file.py")
    assert confinement.keep == (str(tree / "locked/file.py"), str(tree / "locked/lib"))


def test_paths_in_a_shared_folder_are_kept(tree: Tree):
    confinement = tree.plan("tmp/pkg", "open/lib")
    assert (confinement.covers, confinement.keep) == ((), (str(tree / "tmp/pkg"),))


def test_every_shared_folder_gets_a_private_one(tree: Tree):
    assert tree.plan().shared == tuple(sorted(world_writable(SYSTEM_SHARED) | {str(tree / "tmp")}))


@pytest.mark.parametrize("runs", ["locked/runs", "locked", "locked-link/runs"])
def test_the_jobs_folder_inside_a_cover_is_refused(tree: Tree, runs: str):
    (tree / "locked" / "runs").mkdir()
    (tree / "locked-link").symlink_to(tree / "locked")
    with pytest.raises(IsolationError) as refused:
        tree.plan("locked/file.py", runs=runs)
    assert str(refused.value) == (
        f"the jobs' folder {tree / runs} lies in a folder other users cannot enter; set "
        "TMPDIR to another folder"
    )


def test_the_jobs_folder_beside_a_cover_is_accepted(tree: Tree):
    assert tree.plan("locked/file.py", runs="runs").covers == (str(tree / "locked"),)


def test_reachable_paths_may_be_given_as_text(tree: Tree):
    confinement = plan(
        data_dir=tree / "data",
        reachable=[str(tree / "locked/file.py")],
        runs_root=tree / "runs",
        euid=0,
        ids=FREE_IDS,
    )
    assert confinement.keep == (str(tree / "locked/file.py"),)
