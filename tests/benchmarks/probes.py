"""Measuring instruments: keep-alive HTTP calls, a latency probe sampling every 20 ms,
peak RSS of another process, CPU quiet."""

from __future__ import annotations

import http.client
import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank), ``q`` in 0..100."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


class Conn:
    """One keep-alive HTTP/1.1 connection (reopened if the server closes it)."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None, timeout=7200):
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.headers = dict(headers or {})
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        data = None
        all_headers = {**self.headers, **(headers or {})}
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        for attempt in range(2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self._conn.request(method, path, body=data, headers=all_headers)
                response = self._conn.getresponse()
                payload = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
                continue
            if response.will_close:
                self.close()
            return response.status, payload
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, body: Any = None) -> Any:
        status, payload = self.request(method, path, body)
        try:
            data = json.loads(payload)
        except ValueError:
            data = None
        if status != 200 or not isinstance(data, dict) or data.get("code") not in (0, None):
            raise RuntimeError(f"{method} {path} answered {status}: {payload[:500]!r}")
        return data

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class LatencyProbe:
    """``GET path`` every ``interval`` seconds on its own thread and connection; the
    latencies (seconds) of every sample taken between start and stop."""

    def __init__(self, base_url: str, path: str, headers: dict[str, str], interval=0.02):
        self.conn = Conn(base_url, headers, timeout=60)
        self.path = path
        self.interval = interval
        self.latencies: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="latency-probe", daemon=True)

    def _run(self) -> None:
        next_at = time.perf_counter()
        while not self._stop.is_set():
            start = time.perf_counter()
            try:
                status, _ = self.conn.request("GET", self.path)
            except OSError:
                status = 0
            elapsed = time.perf_counter() - start
            if status == 200:
                self.latencies.append(elapsed)
            else:
                self.failures += 1
            next_at += self.interval
            delay = next_at - time.perf_counter()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_at = time.perf_counter()

    def __enter__(self) -> LatencyProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.conn.close()


@dataclass
class LatencySummary:
    p50: float
    p99: float
    max: float
    samples: int

    @classmethod
    def of(cls, latencies: Sequence[float]) -> LatencySummary:
        return cls(
            percentile(latencies, 50),
            percentile(latencies, 99),
            max(latencies) if latencies else math.nan,
            len(latencies),
        )

    def text(self) -> str:
        ms = 1000
        return f"{self.p50 * ms:.1f}/{self.p99 * ms:.1f}/{self.max * ms:.1f} ms"


def login_cookie(base_url: str, path: str, headers: dict[str, str]) -> str:
    """The cookies a token-authenticated reply sets, as a ``Cookie`` header value.

    The panel's browser keeps the login cookie jupyter_server sets on its first token reply
    and sends it back; a client that drops it makes the server sign a new one every reply.
    """
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        headers_set = response.getheaders()
        cookies = [v.split(";", 1)[0] for k, v in headers_set if k.lower() == "set-cookie"]
    finally:
        conn.close()
    if not cookies:
        raise RuntimeError(f"{path} set no login cookie")
    return "; ".join(cookies)


# --- other processes -------------------------------------------------------------------


def _status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


class PeakRss:
    """Peak RSS growth of process ``pid`` across a block: VmHWM reset (``clear_refs``
    5) on entry, VmHWM minus the RSS before on exit, in bytes."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = 0
        self.peak = 0

    def __enter__(self) -> PeakRss:
        with open(f"/proc/{self.pid}/clear_refs", "w") as f:
            f.write("5")
        self.before = _status_kib(self.pid, "VmRSS") * 1024
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = _status_kib(self.pid, "VmHWM") * 1024

    @property
    def growth(self) -> int:
        return max(0, self.peak - self.before)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds(pid: int) -> float:
    """CPU time of a process and of the children it has waited for."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuAccount:
    """Busy CPU time of the whole machine and of the benchmark's own processes."""

    at: float
    machine_busy: float
    ours: float

    @classmethod
    def now(cls, pids: Sequence[int]) -> CpuAccount:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        busy = (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
        times = os.times()
        ours = times.user + times.system + times.children_user + times.children_system
        ours += sum(_own_cpu_seconds(pid) for pid in pids)
        return cls(time.monotonic(), busy, ours)

    def others_share_since(self, before: CpuAccount) -> float:
        """The share of all CPUs' time that other processes used since ``before``."""
        elapsed = (self.at - before.at) * (os.cpu_count() or 1)
        others = (self.machine_busy - before.machine_busy) - (self.ours - before.ours)
        return max(0.0, others / elapsed) if elapsed > 0 else 0.0


def wait_quiet(pids: Sequence[int], timeout: float = 60.0, windows: int = 2) -> None:
    """Wait until these processes used under 5% of a CPU in ``windows`` half-seconds in a
    row (a deleted job's cleanup must not run into the next measurement)."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline and quiet < windows:
        before = sum(cpu_seconds(p) for p in pids)
        time.sleep(0.5)
        quiet = quiet + 1 if sum(cpu_seconds(p) for p in pids) - before < 0.025 else 0


@dataclass
class ShellRun:
    wall: float
    returncode: int
    max_rss: int  # bytes, of the largest process of the pipeline
    stdout: bytes
    #: bytes: the largest sum of the RSS of every process of the pipeline at one moment
    #: (sampled every 0.1 s), which counts a JVM beside the Python that started it
    tree_rss: int = 0
    #: why the pipeline was stopped ("timeout", "memory"), or "" when it ended by itself
    stopped: str = ""


# The pipeline runs under a small Python process: a child forked from this (large)
# process would inherit its RSS high-water mark, while the children of a small one start
# from their own. It reports, on its last stderr line, the wall time, RUSAGE_CHILDREN's
# ru_maxrss (the largest process of the pipeline that was waited for: a process whose
# parent leaves it to exit alone is not in it), the largest sampled sum of the RSS of the
# whole process tree (when asked to sample it), and why it stopped the pipeline. Past the
# time or the summed RSS limit (0: none) it kills the pipeline's process group.
_PIPELINE_RUNNER = """
import os, resource, signal, subprocess, sys, time
command, timeout, limit, every = sys.argv[1], *map(float, sys.argv[2:5])
page = os.sysconf("SC_PAGE_SIZE")

def tree_rss(root):
    parents, rss = {}, {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(name)] = int(fields[1])
            rss[int(name)] = int(fields[21]) * page
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += [child for child, parent in parents.items() if parent == pid]
    return total

start = time.perf_counter()
child = subprocess.Popen(["bash", "-o", "pipefail", "-c", command], start_new_session=True)
peak, stopped = 0, ""
while every and child.poll() is None:
    peak = max(peak, tree_rss(child.pid))
    elapsed = time.perf_counter() - start
    why = "timeout" if timeout and elapsed > timeout else ""
    why = why or ("memory" if limit and peak > limit else "")
    if why and not stopped:
        stopped = why
        os.killpg(child.pid, signal.SIGKILL)
    time.sleep(every)
code = child.wait()
wall = time.perf_counter() - start
maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(wall, maxrss, peak, stopped or "-", file=sys.stderr)
sys.exit(code)
"""


def run_shell(
    command: str,
    stdout_path: str,
    timeout: float = 0.0,
    rss_limit: int = 0,
    sample_tree: bool = False,
) -> ShellRun:
    """Run a shell pipeline: its wall time, exit status, stdout and the peak RSS of its
    largest process. With ``sample_tree``, the whole tree's RSS is also summed every 0.1 s
    (``tree_rss``), and past ``timeout`` seconds or ``rss_limit`` bytes of it (0: no
    limit) the pipeline is killed, ``stopped`` saying why. Without, nothing polls beside
    the pipeline (the latency figures stay undisturbed)."""
    with open(stdout_path, "wb") as out:
        done = subprocess.run(
            [
                *(sys.executable, "-c", _PIPELINE_RUNNER, command),
                *(str(timeout), str(rss_limit), "0.1" if sample_tree else "0"),
            ],
            stdout=out,
            stderr=subprocess.PIPE,
            check=False,
        )
    *errors, last = done.stderr.decode(errors="replace").strip().splitlines() or [""]
    try:
        wall, max_rss_kib, tree, stopped = last.split()
        wall, max_rss_kib, tree = float(wall), int(max_rss_kib), int(tree)
    except ValueError:
        raise RuntimeError(f"the pipeline runner failed: {done.stderr[-500:]!r}") from None
    with open(stdout_path, "rb") as f:
        output = f.read()
    if done.returncode != 0:
        output += "\n".join(errors).encode()
    return ShellRun(
        wall, done.returncode, max_rss_kib * 1024, output, tree, "" if stopped == "-" else stopped
    )
