"""``--engine spark`` beyond one machine: a master that is not ``local...`` is given a
``gs://`` URL itself (its executors cannot read the driver's disk), and reads it through
Google's Cloud Storage connector; ``local[*]`` keeps reading the engine's local copy.

The end-to-end tests start a Spark standalone cluster on 127.0.0.1 (a master and one
worker, from pyspark's own jars) and serve the bucket from the GCS emulator; the
connector's jar is downloaded from Maven Central into pytest's cache on first use. One
cluster's worker runs in a mount namespace of its own where the driver's folder is an
empty tmpfs, as on machines that do not share the driver's disk: the output the tool
writes there is re-read for the report by a local DuckDB, not by the executors."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from jupyterlab_manatee.provision.cli import _output_engine, parser
from jupyterlab_manatee.provision.engines import open_engine
from jupyterlab_manatee.provision.engines.sources import spark_location
from jupyterlab_manatee.provision.errors import InputError
from tests.test_provision_engine import gcs_emulator  # noqa: F401 (a fixture)
from tests.test_provision_spark import (
    UNDER_CI,
    run_command,
    small_categories,
)

REPO = Path(__file__).resolve().parent.parent
CONNECTOR = "gcs-connector-4.0.4-shaded.jar"
CONNECTOR_URL = (
    "https://repo1.maven.org/maven2/com/google/cloud/bigdataoss/gcs-connector/4.0.4/" + CONNECTOR
)
#: Maven Central's SHA-1 of the jar
CONNECTOR_SHA1 = "7ffdc04d1cc08c742916c696805761044e36b919"
CLASSES = "com.google.cloud.hadoop.fs.gcs"
CLUSTER = "spark://10.1.2.3:7077"


# -- which location Spark is given ---------------------------------------------------------
def test_a_cluster_master_is_given_the_gs_url_itself_and_nothing_is_copied(tmp_path):
    for master in (CLUSTER, "yarn", "k8s://https://10.1.2.3:443"):
        assert spark_location("gs://bucket/t/real.csv", tmp_path, master=master) == (
            "gs://bucket/t/real.csv"
        )
    assert list(tmp_path.iterdir()) == []


def test_a_local_master_is_given_the_local_copy_of_a_gs_object(tmp_path, gcs_emulator):  # noqa: F811
    gcs_emulator.create_bucket("bucket").blob("t/real.csv").upload_from_string("a\n1\n")
    where = spark_location("gs://bucket/t/real.csv", tmp_path, master="local[2]")
    assert where == str(tmp_path / "input-0-real.csv")
    assert Path(where).read_text() == "a\n1\n"


def test_a_cluster_master_refuses_a_gs_url_without_an_object(tmp_path):
    with pytest.raises(InputError, match="a gs:// input is gs://bucket/object"):
        spark_location("gs://bucket", tmp_path, master=CLUSTER)


def test_a_local_path_is_given_as_it_is_to_a_cluster_master(tmp_path):
    table = tmp_path / "real.csv"
    table.write_text("a\n1\n")
    assert spark_location(str(table), tmp_path / "engine", master=CLUSTER) == str(table)


# -- which engine re-reads the written output for the report -------------------------------
def _arguments(tmp_path: Path, *choice: str) -> argparse.Namespace:
    return parser().parse_args(
        ["real.csv", "--domain", "d.json", "--epsilon", "1", "--output", "out.csv",
         "--temp-dir", str(tmp_path), *choice]
    )  # fmt: skip


def test_a_local_master_or_duckdb_rereads_the_output_with_the_counting_engine(tmp_path):
    choices = [
        ["--engine", "spark"],
        ["--engine", "spark", "--spark-master", "local[2]"],
        ["--engine", "duckdb", "--spark-master", CLUSTER],
    ]
    with open_engine("duckdb") as counting, contextlib.ExitStack() as stack:
        for choice in choices:
            assert _output_engine(_arguments(tmp_path, *choice), counting, stack) is counting
        assert list(tmp_path.iterdir()) == []


def test_a_cluster_master_rereads_the_output_with_a_local_duckdb_closed_with_the_run(tmp_path):
    """Closed with the run's stack, on an error too: its private folder is gone."""
    import duckdb

    arguments = _arguments(tmp_path, "--engine", "spark", "--spark-master", CLUSTER)
    with open_engine("duckdb") as counting, pytest.raises(KeyboardInterrupt):
        with contextlib.ExitStack() as stack:
            reader = _output_engine(arguments, counting, stack)
            assert reader is not counting
            assert reader.description == f"DuckDB {duckdb.__version__}"
            assert list(tmp_path.iterdir()) == [reader.folder]
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


# -- a standalone cluster reading the bucket -----------------------------------------------
def _unavailable(reason: str) -> NoReturn:
    """Fail under CI, skip on a developer's machine (as the other Spark tests)."""
    if UNDER_CI:
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def connector(request: pytest.FixtureRequest) -> Path:
    """Google's Cloud Storage connector for Hadoop, kept in pytest's cache folder."""
    jar = Path(request.config.cache.mkdir("gcs-connector")) / CONNECTOR
    if not jar.is_file():
        part = jar.with_suffix(".part")
        try:
            with urllib.request.urlopen(CONNECTOR_URL, timeout=120) as reply:
                part.write_bytes(reply.read())
        except OSError as error:
            _unavailable(f"could not download {CONNECTOR_URL} (the GCS connector): {error}")
        if hashlib.sha1(part.read_bytes()).hexdigest() != CONNECTOR_SHA1:
            part.unlink()
            _unavailable(f"{CONNECTOR_URL} did not have Maven Central's SHA-1 {CONNECTOR_SHA1}")
        part.replace(jar)
    return jar


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(log: Path, text: str, process: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while text not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:]
            raise AssertionError(f"the Spark cluster did not start ({text!r} not logged):\n{tail}")
        time.sleep(0.5)


@dataclass(frozen=True)
class Cluster:
    url: str
    #: the worker's folder: one ``app-*`` folder per application its executors ran
    work: Path

    def applications(self) -> int:
        return len(list(self.work.glob("app-*")))


@contextlib.contextmanager
def running_cluster(folder: Path, hidden: Path | None = None) -> Iterator[Cluster]:
    """A Spark standalone master and one worker (1 core, 1 GiB) on 127.0.0.1. With
    ``hidden``, the worker (and so its executors) runs in a mount namespace of its own with
    an empty tmpfs over that folder, as on a cluster whose machines do not share the
    driver's disk; it refuses to start if it still sees the folder's `SENTINEL`."""
    if shutil.which("java") is None:
        _unavailable("Spark needs Java (apt-get install default-jre-headless)")
    try:
        import pyspark
    except ImportError:
        _unavailable("pyspark (the spark extra) is not installed")
    home = Path(pyspark.__file__).parent
    env = {
        **os.environ,
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(folder),
        # no REST submission server: it would take port 6066 on every run
        "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",
    }
    master_url = f"spark://127.0.0.1:{_free_port()}"
    spark_class = str(home / "bin" / "spark-class")
    commands = {
        "master": [
            spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
            "--port", master_url.rsplit(":", 1)[1], "--webui-port", "0",
        ],
        "worker": [
            spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
            "--webui-port", "0", "--cores", "1", "--memory", "1g",
            "--work-dir", str(folder / "work"), master_url,
        ],
    }  # fmt: skip
    if hidden is not None:
        (hidden / SENTINEL).write_text("the worker must not see this\n")
        commands["worker"] = [*walled_off(hidden), *commands["worker"]]
    started: list[subprocess.Popen[bytes]] = []
    try:
        for name, ready in (("master", "I have been elected leader"), ("worker", "registered")):
            log = folder / f"{name}.log"
            with log.open("wb") as handle:
                started.append(
                    subprocess.Popen(commands[name], env=env, stdout=handle, stderr=handle)
                )
            _wait_for(log, ready, started[-1], 90)
        yield Cluster(master_url, folder / "work")
    finally:
        for process in reversed(started):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


#: a file in the hidden folder, which the walled-off worker checks it cannot see
SENTINEL = "seen-by-the-driver-only"


def walled_off(hidden: Path) -> list[str]:
    """The command prefix that runs a command in a user and mount namespace of its own
    (``unshare``, as the local backend's isolation does), with an empty tmpfs over
    ``hidden``; it fails, saying why, if ``hidden`` is still visible there."""
    unshare = shutil.which("unshare")
    if unshare is None:
        _unavailable("hiding a folder from the Spark worker needs unshare (util-linux)")
    prefix = [unshare, "--user", "--map-root-user", "--mount", "--"]
    probe = subprocess.run(
        [*prefix, "mount", "-t", "tmpfs", "tmpfs", str(hidden)], capture_output=True, text=True
    )
    if probe.returncode != 0:
        _unavailable(f"user and mount namespaces are not available here: {probe.stderr.strip()}")
    script = (
        'mount -t tmpfs tmpfs "$1" && test ! -e "$1/$2" '
        '|| { echo "the worker still sees $1" >&2; exit 1; }; shift 2; exec "$@"'
    )
    return [*prefix, "sh", "-c", script, "sh", str(hidden), SENTINEL]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A cluster whose worker sees the same files as the test (one machine)."""
    with running_cluster(tmp_path_factory.mktemp("cluster")) as started:
        yield started


@dataclass(frozen=True)
class WalledCluster:
    cluster: Cluster
    #: a folder the driver (the command) can write and the worker sees empty
    hidden: Path


@pytest.fixture(scope="module")
def walled_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WalledCluster]:
    """A cluster whose worker cannot see the driver's folder ``hidden``, as a worker on
    another machine cannot."""
    hidden = tmp_path_factory.mktemp("driver-only")
    with running_cluster(tmp_path_factory.mktemp("walled-cluster"), hidden) as started:
        yield WalledCluster(started, hidden)


def connector_conf(folder: Path, jar: Path, storage_url: str) -> Path:
    """A ``SPARK_CONF_DIR`` whose spark-defaults.conf gives the driver and the executors
    the connector, reading the emulator without authentication. Hadoop 3.5's own
    ``fs.gs.*`` defaults name another class and write sizes as ``64m``, which this
    connector does not parse: the class and those sizes are set here."""
    conf = folder / "spark-conf"
    conf.mkdir()
    mib = 1024 * 1024
    settings = {
        "spark.jars": str(jar),
        "spark.hadoop.fs.gs.impl": f"{CLASSES}.GoogleHadoopFileSystem",
        "spark.hadoop.fs.AbstractFileSystem.gs.impl": f"{CLASSES}.GoogleHadoopFS",
        "spark.hadoop.fs.gs.storage.root.url": storage_url.rstrip("/") + "/",
        "spark.hadoop.fs.gs.auth.type": "UNAUTHENTICATED",
        "spark.hadoop.fs.gs.block.size": str(64 * mib),
        "spark.hadoop.fs.gs.rewrite.max.chunk.size": str(512 * mib),
        "spark.hadoop.fs.gs.outputstream.buffer.size": str(8 * mib),
        "spark.hadoop.fs.gs.inputstream.inplace.seek.limit": str(8 * mib),
        "spark.hadoop.fs.gs.inputstream.min.range.request.size": str(2 * mib),
    }
    (conf / "spark-defaults.conf").write_text("".join(f"{k} {v}\n" for k, v in settings.items()))
    return conf


@pytest.fixture
def on_cluster(
    tmp_path: Path,
    connector: Path,
    gcs_emulator: object,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[object]:
    """The emulator's client, with the commands' Spark configured for the connector."""
    conf = connector_conf(tmp_path, connector, os.environ["STORAGE_EMULATOR_HOST"])
    monkeypatch.setenv("SPARK_CONF_DIR", str(conf))
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    yield gcs_emulator


def provision_on_cluster(
    cluster: Cluster, table: str, domain: Path, output: Path, env: dict[str, str] | None = None
) -> bytes:
    """Run the command with ``--engine spark`` on the cluster; its output's bytes. The
    worker must have run one more application (its executors did the reading)."""
    before = cluster.applications()
    result = run_command(
        table, "--domain", str(domain), "--epsilon", "4", "--seed", "3", "--iters", "30",
        "--engine", "spark", "--spark-master", cluster.url, "--output", str(output),
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert cluster.applications() == before + 1
    return output.read_bytes()


def provision_with_duckdb(table: str, domain: Path, output: Path) -> bytes:
    result = run_command(
        table, "--domain", str(domain), "--epsilon", "4", "--seed", "3", "--iters", "30",
        "--output", str(output),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return output.read_bytes()


def test_a_cluster_reads_a_gs_csv_and_writes_what_duckdb_writes_from_its_copy(
    tmp_path, cluster, on_cluster
):
    data, domain = small_categories(tmp_path / "in")
    on_cluster.create_bucket("stage2").blob("t/real.csv").upload_from_filename(str(data))
    url = "gs://stage2/t/real.csv"
    spark = provision_on_cluster(cluster, url, domain, tmp_path / "spark.csv")
    assert spark == provision_with_duckdb(url, domain, tmp_path / "duckdb.csv")
    assert spark.splitlines()[0] == b"a,b,c"


def test_a_cluster_reads_a_gs_parquet_table_through_the_connector_alone(
    tmp_path, cluster, on_cluster
):
    """The command's own client for gs:// is pointed nowhere (no emulator, no
    credentials): only the executors' connector can have read the table."""
    import pyarrow.csv
    import pyarrow.parquet

    data, domain = small_categories(tmp_path / "in")
    table = tmp_path / "real.parquet"
    pyarrow.parquet.write_table(pyarrow.csv.read_csv(data), table)
    on_cluster.create_bucket("stage2").blob("real.parquet").upload_from_filename(str(table))
    env = {k: v for k, v in os.environ.items() if k != "STORAGE_EMULATOR_HOST"}
    env["GOOGLE_APPLICATION_CREDENTIALS"] = str(tmp_path / "no-credentials.json")
    url = "gs://stage2/real.parquet"
    spark = provision_on_cluster(cluster, url, domain, tmp_path / "spark.csv", env)
    assert spark == provision_with_duckdb(str(table), domain, tmp_path / "duckdb.csv")


def test_a_cluster_whose_worker_cannot_see_the_output_still_reports_on_it(
    tmp_path, walled_cluster, on_cluster
):
    """The input and holdout are in gs:// (the executors read them); the output, the
    domain and the report are in a folder the worker sees empty, as a worker on another
    machine would: the report's re-reading of the output must not need the executors.
    It equals the report of a DuckDB run with the same seed (the same counts, so the same
    output), but for the engines and the time."""
    import duckdb
    import pyspark

    before = walled_cluster.cluster.applications()
    data, domain = small_categories(walled_cluster.hidden / "in")
    bucket = on_cluster.create_bucket("stage2")
    bucket.blob("t/real.csv").upload_from_filename(str(data))
    bucket.blob("t/holdout.csv").upload_from_filename(str(data))
    reports = {}
    engines = {
        "spark": ["--engine", "spark", "--spark-master", walled_cluster.cluster.url],
        "duckdb": ["--engine", "duckdb"],
    }
    for engine, choice in engines.items():
        folder = walled_cluster.hidden / engine
        result = run_command(
            "gs://stage2/t/real.csv", "--domain", str(domain), "--epsilon", "4", "--seed", "3",
            "--iters", "30", "--holdout", "gs://stage2/t/holdout.csv", "--target", "a",
            *choice, "--output", str(folder / "out.csv"), "--report", str(folder / "report.json"),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        reports[engine] = json.loads((folder / "report.json").read_text())
    spark, local = reports["spark"], reports["duckdb"]
    assert spark["engine"] == f"Spark {pyspark.__version__} on {walled_cluster.cluster.url}"
    assert spark["output_engine"] == f"DuckDB {duckdb.__version__}"
    assert "output_engine" not in local
    assert spark["not_private"]["distances"] == local["not_private"]["distances"]
    utility = spark["not_private"]["utility"]
    assert utility["holdout_rows"] == 240
    assert utility == pytest.approx(local["not_private"]["utility"])
    assert walled_cluster.cluster.applications() == before + 1


def test_a_local_input_the_workers_cannot_see_is_refused_with_sparks_reason(
    tmp_path, walled_cluster, on_cluster
):
    """On a cluster a local input must be readable at its path by every executor. When it
    is not, the error names the file and Spark's reason, not the JVM call that failed."""
    data, domain = small_categories(walled_cluster.hidden / "local-in")
    result = run_command(
        str(data), "--domain", str(domain), "--epsilon", "4", "--seed", "3", "--iters", "30",
        "--engine", "spark", "--spark-master", walled_cluster.cluster.url,
        "--output", str(tmp_path / "out.csv"),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"manatee-provision: error: cannot read {data}: ")
    assert "[FAILED_READ_FILE.FILE_NOT_EXIST]" in last
    assert "collectToPython" not in last
    assert not (tmp_path / "out.csv").exists()
