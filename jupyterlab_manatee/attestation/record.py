"""The proof saved beside an output: ``<output name>.attestation.json``.

It holds the token text exactly as fetched, the verification result at saving time and
what the API said about the job, so the output can be re-verified later (by the route or
the command line) without asking the API again. It is written to a hidden temporary file
and linked into place: never half-written, never replacing an existing file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .files import open_regular
from .verify import JobFacts, Verification

RECORD_SUFFIX = ".attestation.json"
RECORD_FORMAT = "jupyterlab-manatee/attestation/1"
MAX_RECORD_BYTES = 4 * 1024 * 1024
TEMP_PREFIX = ".manatee-attestation-"


def record_name(output_name: str) -> str:
    """``out-7-nb.ipynb`` -> ``out-7-nb.ipynb.attestation.json``."""
    return output_name + RECORD_SUFFIX


def make_record(
    *,
    output_name: str,
    output_md5: str,
    token: str,
    verification: Verification,
    job: JobFacts,
    saved_at: datetime | None = None,
) -> dict[str, Any]:
    when = (saved_at or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "format": RECORD_FORMAT,
        "output": output_name,
        "output_md5": output_md5,
        "job": job.to_json(),
        "saved_at": when,
        "token": token,
        "verification": verification.to_json(),
    }


def write_new_record(path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` at ``path`` atomically; raise FileExistsError rather than replace."""
    data = json.dumps(record, indent=1).encode()
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX, suffix=".part")
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            raise
        except OSError:
            # File systems without hard links: claim the name exclusively, then replace it.
            with open(path, "x"):
                pass
            os.replace(temp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def read_record(path: Path) -> dict[str, Any]:
    """A saved record, checked to hold a token; raises ValueError saying what is wrong."""
    with open_regular(path) as f:
        if os.fstat(f.fileno()).st_size > MAX_RECORD_BYTES:
            raise ValueError(f"{path.name} is larger than {MAX_RECORD_BYTES} bytes")
        raw = f.read(MAX_RECORD_BYTES + 1)
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ValueError(f"{path.name} is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("token"), str):
        raise ValueError(f"{path.name} is not an attestation record (no token)")
    return data
