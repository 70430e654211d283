"""The submit-time archive check answers as Go's gzip and tar readers do.

The expected texts are what Go 1.23's ``compress/gzip`` and ``archive/tar`` return in
upstream's read loop (``Next``, then ``io.Copy`` of the entry) for the same bytes.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

from jupyterlab_manatee.local_backend.tarcheck import refusal

BLOCK = 512


def tar_bytes(files: dict[str, bytes]) -> bytes:
    """A plain tar (no gzip) of regular files, ending in tarfile's two zero blocks."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def check(tmp_path: Path, data: bytes) -> str | None:
    path = tmp_path / "archive.tar.gz"
    path.write_bytes(data)
    return refusal(path)


def test_a_gzip_of_a_tar_is_accepted(tmp_path):
    assert check(tmp_path, gzip.compress(tar_bytes({"a.txt": b"hello"}))) is None


def test_a_tar_cut_inside_an_entrys_data_fails_at_the_copy(tmp_path):
    plain = tar_bytes({"a.txt": b"x" * 2000})
    data = gzip.compress(plain[: BLOCK + 1000])
    assert check(tmp_path, data) == "failed to write tar entry: unexpected EOF"


def test_a_gzip_cut_inside_an_entrys_data_fails_at_the_copy(tmp_path):
    compressed = gzip.compress(tar_bytes({"a.bin": bytes(range(256)) * 2000}), compresslevel=0)
    assert check(tmp_path, compressed[:100_000]) == "failed to write tar entry: unexpected EOF"


def test_a_header_cut_short_after_the_first_entry_is_an_unexpected_eof(tmp_path):
    plain = tar_bytes({"a.txt": b"hello", "b.txt": b"world"})
    data = gzip.compress(plain[: 2 * BLOCK + 100])
    assert check(tmp_path, data) == "failed to read tar entry: unexpected EOF"


def test_an_invalid_header_after_the_first_entry_is_refused(tmp_path):
    plain = tar_bytes({"a.txt": b"hello"})
    data = gzip.compress(plain[: 2 * BLOCK] + b"not a header " * 80)
    assert check(tmp_path, data) == "failed to read tar entry: archive/tar: invalid tar header"


def test_one_zero_block_then_a_header_is_refused(tmp_path):
    plain = tar_bytes({"a.txt": b"hello", "b.txt": b"world"})
    data = gzip.compress(plain[: 2 * BLOCK] + bytes(BLOCK) + plain[2 * BLOCK :])
    assert check(tmp_path, data) == "failed to read tar entry: archive/tar: invalid tar header"


def test_one_zero_block_then_the_end_of_the_data_is_accepted(tmp_path):
    plain = tar_bytes({"a.txt": b"hello"})
    assert check(tmp_path, gzip.compress(plain[: 3 * BLOCK])) is None


def test_a_tar_ending_inside_its_last_entrys_padding_is_accepted(tmp_path):
    plain = tar_bytes({"a.txt": b"hello"})
    assert check(tmp_path, gzip.compress(plain[: BLOCK + 100])) is None


def test_a_wrong_crc_read_before_the_tars_end_is_an_invalid_checksum(tmp_path):
    plain = tar_bytes({"a.txt": b"hello"})
    compressed = gzip.compress(plain[: 2 * BLOCK])  # no zero blocks: Go reads to the trailer
    data = compressed[:-8] + bytes(4) + compressed[-4:]
    assert check(tmp_path, data) == "failed to read tar entry: gzip: invalid checksum"


def test_corrupt_deflate_data_is_flates_corrupt_input_without_its_offset(tmp_path):
    """Go adds ``before offset N`` (a docs/operators/real-api.md deliberate difference)."""
    compressed = gzip.compress(tar_bytes({"a.txt": b"hello"}))
    data = compressed[:20] + b"\xff" * 30 + compressed[50:]
    assert check(tmp_path, data) == "failed to read tar entry: flate: corrupt input"
