"""Jobs apart: a running job cannot see or touch another job, nor steer the backend's kills.

As root the backend runs each job as a user of its own (from ``job_ids``) in a PID, IPC
and mount namespace of its own, with a private /tmp, /var/tmp and /dev/shm; its executor
is non-dumpable; and the runner signals only the process group it started itself.

The main scene runs two creators' real notebooks at once on one real backend: alice's
job writes a file, a temp file and carries a secret in its environment, says it is ready
and then waits until the test releases it; only then does bob's job run, told exactly
where alice's folder and processes are, and tries everything. Alice is released only
after bob's job has finished, so bob's attempts provably happen while she runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid as uuid_module
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
import requests
from lb_support import (
    SLEEPING_NOTEBOOK,
    TERMINAL,
    TOKEN,
    Api,
    notebook_bytes,
    processes_under,
    wait_no_processes_under,
    workspace_archive,
)
from test_cli import start_cli, wait_for_line

from jupyterlab_manatee.local_backend import LocalBackend
from jupyterlab_manatee.local_backend.isolation import (
    LAUNCHER_MODULE,
    Confinement,
    IsolationError,
    JobIds,
    processes_of,
)
from jupyterlab_manatee.local_backend.runner import JobRunner, leads_a_group_under, runs_root_for

as_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="only root can confine jobs (CI runs as root)"
)
JOB_IDS = range(300_000, 300_004)
NOBODY = 65534
ALICE_TEXT = "alice's own words, 41 bytes of them!!!!!\n"
ALICE_SECRET = "alice-secret-0c9e1d"
BACKEND_SECRET_NAME = "MANATEE_TEST_APART_BACKEND_SECRET"
BACKEND_SECRET = "backend-secret-5e21aa"
PTRACE_ATTACH = 16
PTRACE_DETACH = 17


def printed(outputs: list[dict]) -> str:
    return "".join(out.get("text", "") for out in outputs if out.get("output_type") == "stream")


def cells_of(api: Api, job: dict[str, Any]) -> list[list[dict]]:
    content = requests.get(api.download(job["id"])["signed_url"], timeout=10).content
    nb = nbformat.reads(content.decode("utf-8"), as_version=4)
    return [cell.outputs for cell in nb.cells]


def wait_for_file(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line)


def in_pid_namespace_of(pid: int) -> list[int]:
    """The processes in the PID namespace of ``pid`` (read as root, from outside)."""
    namespace = os.readlink(f"/proc/{pid}/ns/pid")
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.readlink(entry / "ns" / "pid") == namespace:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def pipe_inodes(pid: int | str) -> set[str]:
    """The pipes process ``pid`` holds a descriptor of (read as root)."""
    found = set()
    folder = Path(f"/proc/{pid}/fd")
    for fd in folder.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("pipe:"):
            found.add(target)
    return found


# -- what each job runs ------------------------------------------------------------------
#: Reports (as JSON) which processes a job sees: pid -> uid, and whose cwd or environment
#: mentions ``mark``.
SCAN = """
import json, os
def scan(mark):
    seen, leaks = {}, []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            status = open(f'/proc/{entry}/status').read()
        except OSError:
            continue
        uid_line = [row for row in status.splitlines() if row.startswith('Uid:')][0]
        seen[entry] = int(uid_line.split()[1])
        for name in ('environ', 'cmdline'):
            try:
                if mark.encode() in open(f'/proc/{entry}/{name}', 'rb').read():
                    leaks.append(f'{entry}/{name}')
            except OSError:
                pass
        try:
            if mark in os.readlink(f'/proc/{entry}/cwd'):
                leaks.append(f'{entry}/cwd')
        except OSError:
            pass
    return {'uid': os.getuid(), 'gid': os.getgid(), 'groups': os.getgroups(),
            'seen_uids': sorted(set(seen.values())), 'leaks': leaks}
"""

#: The notebook's code tries to take over its own executor (its parent).
TRACE = f"""
import ctypes, errno, json, os
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long
executor = os.getppid()
tried = {{}}
if libc.ptrace({PTRACE_ATTACH}, executor, None, None) == 0:
    tried['ptrace'] = 'attached'
    os.waitpid(executor, 0x40000000)  # __WALL: it stops; let it go again
    libc.ptrace({PTRACE_DETACH}, executor, None, None)
else:
    tried['ptrace'] = errno.errorcode[ctypes.get_errno()]
def attempt(name, action):
    try:
        action()
        tried[name] = 'done'
    except OSError as exc:
        tried[name] = type(exc).__name__
attempt('fd', lambda: os.listdir(f'/proc/{{executor}}/fd'))
attempt('fd1', lambda: open(f'/proc/{{executor}}/fd/1', 'wb').close())
attempt('environ', lambda: open(f'/proc/{{executor}}/environ', 'rb').read())
attempt('mem', lambda: open(f'/proc/{{executor}}/mem', 'rb').close())
print(json.dumps({{'executor': executor, **tried}}))
"""


#: System V IPC key of the shared memory segment alice makes, open to every user (0666).
SHM_KEY = 0x4D414E41
IPC_CREAT = 0o1000


def alice_notebook() -> bytes:
    return notebook_bytes(
        TRACE,
        SCAN + "print(json.dumps(scan('bob')))",
        "import ctypes, pathlib, time\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        f"assert libc.shmget({SHM_KEY}, 4096, {IPC_CREAT} | 0o666) >= 0\n"
        f"pathlib.Path('alice.txt').write_text({ALICE_TEXT!r})\n"
        f"pathlib.Path('/tmp/alice-tmp.txt').write_text({ALICE_TEXT!r})\n"
        "pathlib.Path('ready').touch()\n"
        "deadline = time.monotonic() + 120\n"
        "while not pathlib.Path('release').exists() and time.monotonic() < deadline:\n"
        "    time.sleep(0.05)\n"
        "print('released' if pathlib.Path('release').exists() else 'deadline')",
        "import os\n"
        "print('file=' + pathlib.Path('alice.txt').read_text(), end='')\n"
        "print('tmp=' + pathlib.Path('/tmp/alice-tmp.txt').read_text(), end='')\n"
        "print('secret=' + os.environ['ALICE_SECRET'])",
    )


def bob_notebook(
    alice_run: Path, alice_pids: list[int], runs_root: Path, markers: list[Path]
) -> bytes:
    """Bob is told exactly where alice's folder and processes are (the worst case)."""
    attack = f"""
import ctypes, errno, json, os, signal
alice_file = {str(alice_run / "workspace" / "alice.txt")!r}
tried = {{}}
def attempt(name, action):
    try:
        action()
        tried[name] = 'done'
    except OSError as exc:
        tried[name] = type(exc).__name__
attempt('read', lambda: open(alice_file).read())
attempt('append', lambda: open(alice_file, 'a').write('bob was here'))
attempt('list', lambda: os.listdir({str(alice_run)!r}))
attempt('read tmp', lambda: open('/tmp/alice-tmp.txt').read())
attempt('append tmp', lambda: open('/tmp/alice-tmp.txt', 'a').write('bob was here'))
for pid in {alice_pids!r}:
    attempt(f'environ {{pid}}', lambda pid=pid: open(f'/proc/{{pid}}/environ', 'rb').read())
    attempt(f'cwd {{pid}}', lambda pid=pid: os.listdir(f'/proc/{{pid}}/cwd'))
    attempt(f'signal {{pid}}', lambda pid=pid: os.kill(pid, 0))
listings = {{}}
for folder in ('/tmp', '/var/tmp', '/dev/shm', {str(runs_root)!r}):
    try:
        listings[folder] = sorted(os.listdir(folder))
    except OSError as exc:
        listings[folder] = type(exc).__name__
markers = {{m: os.path.exists(m) for m in {[str(m) for m in markers]!r}}}
libc = ctypes.CDLL(None, use_errno=True)
shm = libc.shmget({SHM_KEY}, 0, 0)
tried['shm'] = 'found' if shm >= 0 else errno.errorcode[ctypes.get_errno()]
print(json.dumps({{'tried': tried, 'listings': listings, 'markers': markers}}))
"""
    return notebook_bytes(SCAN + "print(json.dumps(scan('alice')))", attack)


class Scene:
    """What the two jobs printed, and what root saw of alice's job while it ran."""

    backend: LocalBackend
    alice: dict[str, Any]
    bob: dict[str, Any]
    alice_cells: list[list[dict]]
    bob_cells: list[list[dict]]
    alice_uids: dict[int, int]  # host pid -> real uid, for alice's processes
    alice_executor: int  # host pid of her executor (her PID namespace's 1)
    executor_environ: dict[str, str]
    backend_pipes: set[str]
    executor_pipes: set[str]
    kernel_pipes: set[str]

    def json_of(self, cells: list[list[dict]], index: int) -> dict[str, Any]:
        return json.loads(printed(cells[index]))


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Iterator[Scene]:
    if os.geteuid() != 0:
        pytest.skip("only root can confine jobs (CI runs as root)")
    root = tmp_path_factory.mktemp("apart")
    tag = uuid_module.uuid4().hex[:8]
    markers = [Path(folder) / f"manatee-host-marker-{tag}" for folder in ("/tmp", "/var/tmp")]
    if Path("/dev/shm").is_dir():
        markers.append(Path("/dev/shm") / f"manatee-host-marker-{tag}")
    for marker in markers:
        marker.write_text("on the host\n")
    os.environ[BACKEND_SECRET_NAME] = BACKEND_SECRET
    backend = LocalBackend(
        root / "data", token=TOKEN, reconcile_interval=0, max_running=2, job_ids=JOB_IDS
    )
    try:
        with backend.running_in_thread():
            result = Scene()
            result.backend = backend
            alice_api = Api(backend.url, creator="alice")
            bob_api = Api(backend.url, creator="bob")
            alice = alice_api.submit_ok(
                workspace_archive({"nb.ipynb": alice_notebook()}, top="alice-workspace"),
                envs=[{"key": "ALICE_SECRET", "value": ALICE_SECRET}],
            )
            alice_api.wait(alice, {4} | TERMINAL, timeout=60)
            alice_run = backend.runs_root / alice
            wait_for_file(alice_run / "workspace" / "ready")
            assert alice_api.job(alice)["job_status"] == 4

            # what root sees of alice's job while it waits: her executor (the job's
            # process whose parent is the runner's child) and every process in its PID
            # namespace
            under = {p: proc_status(p) for p in processes_under(alice_run)}
            job_side = {p for p, status in under.items() if status["Uid"].split()[0] != "0"}
            executors = [p for p in job_side if int(under[p]["PPid"]) not in job_side]
            assert len(executors) == 1, under
            result.alice_executor = executors[0]
            pids = in_pid_namespace_of(result.alice_executor)
            result.alice_uids = {pid: int(proc_status(pid)["Uid"].split()[0]) for pid in pids}
            raw = Path(f"/proc/{result.alice_executor}/environ").read_bytes()
            result.executor_environ = dict(
                item.split("=", 1) for item in raw.decode().split("\0") if "=" in item
            )
            result.backend_pipes = pipe_inodes("self")
            result.executor_pipes = pipe_inodes(result.alice_executor)
            result.kernel_pipes = set().union(
                *(pipe_inodes(p) for p in pids if p != result.alice_executor)
            )

            bob = bob_api.submit_ok(
                workspace_archive(
                    {"nb.ipynb": bob_notebook(alice_run, pids, backend.runs_root, markers)},
                    top="bob-workspace",
                )
            )
            result.bob = bob_api.wait(bob, TERMINAL, timeout=90)
            assert alice_api.job(alice)["job_status"] == 4  # she was running all along
            (alice_run / "workspace" / "release").touch()
            result.alice = alice_api.wait(alice, TERMINAL, timeout=60)
            assert result.alice["job_status"] == 5, result.alice
            assert result.bob["job_status"] == 5, result.bob
            result.alice_cells = cells_of(alice_api, result.alice)
            result.bob_cells = cells_of(bob_api, result.bob)
            yield result
    finally:
        del os.environ[BACKEND_SECRET_NAME]
        for marker in markers:
            marker.unlink(missing_ok=True)


# -- two creators' jobs at once ----------------------------------------------------------
@as_root
def test_alice_was_running_while_bob_looked(scene):
    assert printed(scene.alice_cells[2]) == "released\n"


@as_root
def test_bob_finds_none_of_alices_processes(scene):
    seen = scene.json_of(scene.bob_cells, 0)
    assert seen["leaks"] == []
    assert seen["seen_uids"] == [seen["uid"]]


@as_root
def test_bob_cannot_reach_alices_processes_by_their_pids(scene):
    tried = scene.json_of(scene.bob_cells, 1)["tried"]
    for pid in scene.alice_uids:
        # her pids do not exist in bob's PID namespace
        assert tried[f"environ {pid}"] == "FileNotFoundError"
        assert tried[f"cwd {pid}"] == "FileNotFoundError"
        assert tried[f"signal {pid}"] == "ProcessLookupError"


@as_root
def test_bob_cannot_read_or_change_alices_files(scene):
    tried = scene.json_of(scene.bob_cells, 1)["tried"]
    # her folder is not even in bob's view (his /tmp is his own), nor is her temp file
    for name in ("read", "append", "list", "read tmp"):
        assert tried[name] == "FileNotFoundError", name
    assert tried["append tmp"] == "done"  # to bob's own /tmp: a new file of his


@as_root
def test_bob_cannot_find_alices_shared_memory(scene):
    # open to every user, but in alice's IPC namespace only
    assert scene.json_of(scene.bob_cells, 1)["tried"]["shm"] == "ENOENT"


@as_root
def test_alices_output_is_exactly_what_she_wrote(scene):
    assert printed(scene.alice_cells[3]) == (
        f"file={ALICE_TEXT}tmp={ALICE_TEXT}secret={ALICE_SECRET}\n"
    )


@as_root
def test_a_job_has_a_tmp_var_tmp_and_dev_shm_of_its_own(scene):
    report = scene.json_of(scene.bob_cells, 1)
    assert not any(report["markers"].values()), report["markers"]
    # bob's /tmp holds only the file he wrote himself, his kernel's socket folder, the way
    # to his own folder and the interpreter's folders bound back read-only (a checkout or
    # venv under /tmp)
    tmp = Path("/tmp")
    bound_back = [scene.backend.runs_root, *map(Path, scene.backend.confinement.keep)]
    expected_tmp = sorted(
        {"alice-tmp.txt"} | {p.relative_to(tmp).parts[0] for p in bound_back if tmp in p.parents}
    )
    listing = report["listings"]["/tmp"]
    sockets = [name for name in listing if name.startswith("manatee-kernel-")]
    assert len(sockets) == 1, listing
    assert [name for name in listing if name not in sockets] == expected_tmp
    assert report["listings"]["/var/tmp"] == []
    assert report["listings"]["/dev/shm"] == []


@as_root
def test_a_job_sees_only_its_own_folder_among_the_runs(scene):
    listing = scene.json_of(scene.bob_cells, 1)["listings"][str(scene.backend.runs_root)]
    assert listing == [scene.bob["uuid"]]


@as_root
def test_each_job_runs_as_a_user_of_its_own_from_the_range(scene):
    alice = scene.json_of(scene.alice_cells, 1)
    bob = scene.json_of(scene.bob_cells, 0)
    # alice started first and took the lowest id; bob the next one
    assert (alice["uid"], alice["gid"], alice["groups"]) == (300_000, 300_000, [])
    assert (bob["uid"], bob["gid"], bob["groups"]) == (300_001, 300_001, [])
    assert NOBODY not in (alice["uid"], bob["uid"])


@as_root
def test_a_job_sees_only_its_own_processes(scene):
    alice = scene.json_of(scene.alice_cells, 1)
    assert alice["seen_uids"] == [300_000]
    assert alice["leaks"] == []


@as_root
def test_every_process_of_a_job_runs_as_its_user(scene):
    assert len(scene.alice_uids) >= 2  # the executor and the kernel at least
    assert set(scene.alice_uids.values()) == {300_000}


# -- the executor: not the notebook's to take over ---------------------------------------
@as_root
def test_the_executor_is_its_pid_namespaces_init(scene):
    assert scene.json_of(scene.alice_cells, 0)["executor"] == 1


@as_root
def test_the_notebook_cannot_ptrace_its_executor(scene):
    assert scene.json_of(scene.alice_cells, 0)["ptrace"] == "EPERM"


@as_root
def test_the_notebook_cannot_open_its_executors_proc_files(scene):
    tried = scene.json_of(scene.alice_cells, 0)
    assert {name: tried[name] for name in ("fd", "fd1", "environ", "mem")} == {
        "fd": "PermissionError",
        "fd1": "PermissionError",
        "environ": "PermissionError",
        "mem": "PermissionError",
    }


@as_root
def test_the_kernel_holds_no_pipe_to_the_backend(scene):
    assert scene.executor_pipes & scene.backend_pipes  # the progress pipe: the control
    assert not scene.kernel_pipes & scene.backend_pipes


@as_root
def test_the_executor_does_not_carry_the_backends_environment(scene):
    assert "PATH" in scene.executor_environ  # it was read
    assert BACKEND_SECRET_NAME not in scene.executor_environ
    assert BACKEND_SECRET not in "".join(scene.executor_environ.values())


# -- the runner kills only what it started -----------------------------------------------
@pytest.fixture
def victim() -> Iterator[subprocess.Popen]:
    """A process of the test's own, leading a process group of its own."""
    proc = subprocess.Popen(["sleep", "300"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def forging_executor(victim_pid: int) -> str:
    """An executor taken over by the job: it says the kernel is the victim."""
    return (
        "import json, sys, time\n"
        f"print(json.dumps({{'event': 'started', 'kernel_pid': {victim_pid}}}), flush=True)\n"
        "time.sleep(120)\n"
    )


def run_forging_executor(
    start_backend, monkeypatch, victim: subprocess.Popen, **kwargs: Any
) -> dict[str, Any]:
    monkeypatch.setattr(
        JobRunner,
        "_executor_command",
        lambda self, job, run_dir: [sys.executable, "-c", forging_executor(victim.pid)],
    )
    backend = start_backend(job_timeout=3, **kwargs)
    api = Api(backend.url)
    job_uuid = api.submit_ok(workspace_archive({"nb.ipynb": notebook_bytes("1")}))
    api.wait(job_uuid, {4} | TERMINAL, timeout=30)  # the runner read the forged event
    return api.wait(job_uuid, TERMINAL, timeout=30)


@as_root
def test_a_forged_kernel_pid_gets_no_process_killed_when_the_job_times_out(
    start_backend, monkeypatch, victim
):
    job = run_forging_executor(start_backend, monkeypatch, victim)
    assert (job["job_status"], job["status_reason"]) == (7, "timed out after 3 s")
    assert victim.poll() is None


def test_unconfined_a_forged_kernel_pid_gets_no_process_killed(start_backend, monkeypatch, victim):
    monkeypatch.setattr(
        "jupyterlab_manatee.local_backend.backend.plan_confinement",
        lambda **_: Confinement(),
    )
    job = run_forging_executor(start_backend, monkeypatch, victim)
    assert (job["job_status"], job["status_reason"]) == (7, "timed out after 3 s")
    assert victim.poll() is None


FORGER = """
import json, os, pathlib, time
line = (json.dumps({{'event': 'started', 'kernel_pid': {victim}}}) + '\\n').encode()
wrote = []
for fd in os.listdir('/proc/self/fd'):
    try:
        if os.readlink(f'/proc/self/fd/{{fd}}').startswith('pipe:'):
            os.write(int(fd), line)
            wrote.append(f'own {{fd}}')
    except OSError:
        pass
for fd in range(64):
    try:
        with open(f'/proc/{{os.getppid()}}/fd/{{fd}}', 'wb', buffering=0) as pipe:
            pipe.write(line)
        wrote.append(f'executor {{fd}}')
    except OSError:
        pass
pathlib.Path('tried').write_text(json.dumps(wrote))
time.sleep(300)
"""


@as_root
def test_a_notebook_forging_a_started_event_gets_no_process_killed_when_stopped(tmp_path, victim):
    backend = LocalBackend(tmp_path / "data", token=TOKEN, reconcile_interval=0)
    with backend.running_in_thread():
        api = Api(backend.url)
        job_uuid = api.submit_ok(
            workspace_archive({"nb.ipynb": notebook_bytes(FORGER.format(victim=victim.pid))})
        )
        api.wait(job_uuid, {4} | TERMINAL, timeout=60)
        tried = backend.runs_root / job_uuid / "workspace" / "tried"
        wait_for_file(tried)
        wrote = json.loads(tried.read_text())
    # the stop killed the job
    assert victim.poll() is None
    assert not [w for w in wrote if w.startswith("executor")]


def test_a_child_leading_its_own_group_is_verified_as_such():
    child = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        assert leads_a_group_under(child.pid, os.getpid())
        assert not leads_a_group_under(child.pid, os.getpid() + 1)
    finally:
        child.kill()
        child.wait()


def test_a_child_in_its_parents_group_or_another_process_is_not_verified(victim):
    child = subprocess.Popen(["sleep", "60"])
    try:
        assert not leads_a_group_under(child.pid, os.getpid())  # not leading a group
        assert not leads_a_group_under(victim.pid, child.pid)  # not the child's
        assert not leads_a_group_under(2**22 + 7, os.getpid())  # no such process
    finally:
        child.kill()
        child.wait()


# -- choosing the job users ----------------------------------------------------------------
def test_each_job_takes_the_lowest_id_no_other_holds_across_backends(tmp_path):
    locks = tmp_path / "locks"
    first, second = JobIds(range(500, 503), locks), JobIds(range(500, 503), locks)
    assert [first.take(), second.take(), first.take()] == [500, 501, 502]
    with pytest.raises(IsolationError, match="every job user \\(500-502\\) is in use"):
        second.take()
    assert first.give_back(500, tmp_path / "gone")
    assert second.take() == 500


def test_an_id_is_not_given_back_while_its_jobs_folder_remains(tmp_path):
    ids = JobIds(range(500, 501), tmp_path / "locks")
    assert ids.take() == 500
    (tmp_path / "run").mkdir()
    assert not ids.give_back(500, tmp_path / "run")
    with pytest.raises(IsolationError, match="in use"):
        JobIds(range(500, 501), tmp_path / "locks").take()


@as_root
def test_an_id_a_process_still_runs_as_is_neither_handed_out_nor_given_back(tmp_path):
    stray = subprocess.Popen(
        ["setpriv", "--reuid=300100", "--regid=300100", "--clear-groups", "sleep", "60"]
    )
    try:
        wait_until(lambda: processes_of(300_100) == [stray.pid])
        assert JobIds(range(300_100, 300_102), tmp_path / "locks").take() == 300_101
        holder = JobIds(range(300_101, 300_102), tmp_path / "other")
        assert holder.take() == 300_101
        stray_of_holder = subprocess.Popen(
            ["setpriv", "--reuid=300101", "--regid=300101", "--clear-groups", "sleep", "60"]
        )
        try:
            wait_until(lambda: processes_of(300_101) == [stray_of_holder.pid])
            assert not holder.give_back(300_101, tmp_path / "gone", wait=0.2)
        finally:
            stray_of_holder.kill()
            stray_of_holder.wait()
    finally:
        stray.kill()
        stray.wait()


@as_root
def test_an_id_is_given_back_once_its_last_process_ends_within_the_wait(tmp_path):
    ids = JobIds(range(300_110, 300_111), tmp_path / "locks")
    assert ids.take() == 300_110
    ending = subprocess.Popen(
        ["setpriv", "--reuid=300110", "--regid=300110", "--clear-groups", "sleep", "0.5"]
    )
    try:
        wait_until(lambda: processes_of(300_110) == [ending.pid])
        assert ids.give_back(300_110, tmp_path / "gone")  # its zombie does not count
    finally:
        ending.wait()


def test_the_locks_folder_must_be_private(tmp_path):
    locks = tmp_path / "locks"
    locks.mkdir(mode=0o755)
    locks.chmod(0o755)
    with pytest.raises(IsolationError, match="not a private folder"):
        JobIds(range(500, 501), locks).take()


def test_a_backend_needs_an_id_for_each_job_it_may_run(tmp_path):
    with pytest.raises(ValueError, match="at least max_running ids"):
        LocalBackend(tmp_path / "data", max_running=3, job_ids=range(500, 502))


@as_root
def test_a_jobs_id_is_free_again_once_the_job_is_over(start_backend):
    backend = start_backend(max_running=1, job_ids=range(300_200, 300_202), job_timeout=8)
    api = Api(backend.url)
    notebook = notebook_bytes("import os\nprint(os.getuid())")
    killed = api.wait(api.submit_ok(workspace_archive({"nb.ipynb": SLEEPING_NOTEBOOK})), TERMINAL)
    assert (killed["job_status"], killed["status_reason"]) == (7, "timed out after 8 s")
    uids = []
    for _ in range(2):
        job = api.wait(api.submit_ok(workspace_archive({"nb.ipynb": notebook})), TERMINAL)
        assert job["job_status"] == 5, job
        content = requests.get(api.download(job["id"])["signed_url"], timeout=10).content
        nb = nbformat.reads(content.decode("utf-8"), as_version=4)
        uids.append(printed(nb.cells[0].outputs))
    # after a killed job and after a finished one alike, the lowest id is free again
    assert uids == ["300200\n", "300200\n"]


def test_the_cli_refuses_job_uids_that_are_not_a_range(tmp_path):
    proc, lines = start_cli("--port", "0", "--data-dir", str(tmp_path / "d"), "--job-uids", "9-3")
    assert proc.wait(timeout=30) == 2
    wait_for_line(lines, "'9-3' is not FIRST-LAST")


@as_root
def test_as_root_the_cli_refuses_job_uids_some_user_has(tmp_path):
    proc, lines = start_cli(
        "--port", "0", "--data-dir", str(tmp_path / "d"), "--job-uids", "65000-65999"
    )
    assert proc.wait(timeout=30) == 1
    wait_for_line(lines, r"must belong to no one, but user nobody \(65534\)")


def wait_until(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)


def test_a_job_ends_when_its_backend_dies_abruptly(tmp_path):
    data = tmp_path / "d"
    proc, lines = start_cli(
        *("--port", "0", "--data-dir", str(data), "--reconcile-interval", "0"),
        *("--job-uids", "300300-300301"),  # its own: no other test waits for its ids
    )
    try:
        url = wait_for_line(lines, r"ready at (http://127\.0\.0\.1:\d+)").group(1)
        api = Api(url)
        api.headers = {"Authorization": data.joinpath("api-token").read_text().strip()}
        job_uuid = api.submit_ok(workspace_archive({"nb.ipynb": SLEEPING_NOTEBOOK}))
        api.wait(job_uuid, {4}, timeout=60)
        run_dir = runs_root_for(data.resolve()) / job_uuid
        assert processes_under(run_dir)
    finally:
        proc.kill()  # no stop, no cleanup: the job must not outlive the backend
        proc.wait()
    wait_no_processes_under(run_dir, timeout=10)
    if os.geteuid() == 0:  # nor any process of its user (a zombie included)
        wait_until(lambda: not processes_of(300_300))
    shutil.rmtree(run_dir.parent, ignore_errors=True)  # what a next start would sweep


@as_root
def test_the_confinement_step_refuses_to_run_outside_a_pid_namespace_of_its_own(tmp_path):
    step = [sys.executable, "-m", LAUNCHER_MODULE, "--plan", "{}", "--stage", str(tmp_path)]
    result = subprocess.run([*step, "--", "true"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 6  # EXIT_NOT_CONFINED: the job is launch-failed, not run
    assert "as a PID namespace's init" in result.stderr
