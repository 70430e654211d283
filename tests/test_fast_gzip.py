"""The ISA-L archive is a standard gzip tar: independent readers (GNU tar, gzip -t, Python's
tarfile/gzip) read it, and the local backend unpacks it with the fast decompressor."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from jupyterlab_manatee.common import fastgzip
from jupyterlab_manatee.local_backend.unpack import UnpackError, unpack_workspace
from jupyterlab_manatee.workspace.archive import write_archive
from jupyterlab_manatee.workspace.scan import scan_workspace

TOP = "alice-workspace"
NB = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """A workspace with text, incompressible bytes and a sub-folder, archived by ISA-L."""
    folder = tmp_path / "root" / "project"
    (folder / "data").mkdir(parents=True)
    (folder / "main.ipynb").write_bytes(NB)
    (folder / "data" / "table.csv").write_text("a,b\n" + "1,2\n" * 200_000)
    (folder / "data" / "noise.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    manifest = scan_workspace(folder / "main.ipynb", root_dir=tmp_path / "root", exclude=[])
    path = tmp_path / "ws.tar.gz"
    with path.open("wb") as out:
        write_archive(manifest, TOP, out)
    return path


def test_isal_is_the_compressor_in_use() -> None:
    assert fastgzip.HAVE_ISAL


def test_gzip_t_finds_the_archive_intact(archive: Path) -> None:
    subprocess.run(["gzip", "-t", str(archive)], check=True)


def test_gnu_tar_extracts_the_same_bytes(archive: Path, tmp_path: Path) -> None:
    dest = tmp_path / "gnu"
    dest.mkdir()
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(dest)], check=True)
    src = tmp_path / "root" / "project"
    for rel in ("main.ipynb", "data/table.csv", "data/noise.bin"):
        assert (dest / TOP / rel).read_bytes() == (src / rel).read_bytes()


def test_pythons_zlib_reader_reads_every_member(archive: Path) -> None:
    with gzip.open(archive, "rb") as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
        names = [m.name for m in tar]
    assert f"{TOP}/data/noise.bin" in names and f"{TOP}/main.ipynb" in names


def test_default_level_maps_to_isals_default() -> None:
    assert [fastgzip.isal_level(n) for n in range(10)] == [0, 1, 1, 1, 2, 2, 2, 3, 3, 3]


def test_zlib_fallback_writes_the_same_payload() -> None:
    buf = io.BytesIO()
    with fastgzip.gzip_writer(buf, 6, use_isal=False) as gz:
        gz.write(b"x" * 100_000)
    assert gzip.decompress(buf.getvalue()) == b"x" * 100_000


def test_local_backend_unpacks_the_archive(archive: Path, tmp_path: Path) -> None:
    dest = tmp_path / "unpacked"
    unpack_workspace(archive, dest, max_total_size=1 << 30)
    assert (dest / "data" / "noise.bin").stat().st_size == 3 * 1024 * 1024 + 17


def test_local_backend_refuses_an_invalid_deflate_block(archive: Path, tmp_path: Path) -> None:
    """ISA-L raises its own error class (not zlib.error, not OSError) for this one."""
    data = bytearray(archive.read_bytes())
    data[10] = 0x07  # the first block's header: final, block type 3 (reserved, invalid)
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(bytes(data))
    with pytest.raises(UnpackError):
        unpack_workspace(bad, tmp_path / "unpacked", max_total_size=1 << 30)
