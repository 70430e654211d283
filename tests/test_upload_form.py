"""The upload to POST /v1/job/submit/: its multipart form reaches real form parsers on
127.0.0.1 field for field, whatever the values hold (quotes, CR/LF, boundary-like lines),
and its reply is read as the final reply's headers say (after a 1xx; refused on a length
over the cap before any of its body)."""

from __future__ import annotations

import asyncio
import gzip
import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from aiohttp import web

from jupyterlab_manatee.errors import ApiUnavailable
from jupyterlab_manatee.remote import wire
from jupyterlab_manatee.remote.api_client import ManateeApiClient
from tests.test_api_http import RawServer, with_length

JOB_UUID = "00000000-1111-2222-3333-444444444444"
ACCEPTED = json.dumps({"code": 0, "msg": "Success", "uuid": JOB_UUID}).encode()
GO_SOURCE = Path(__file__).parent / "go_form_echo"

#: Values a form field may hold that string formatting would have framed wrongly: a quote
#: (ends a quoted header parameter), CR/LF (ends a header line), and a line that looks like
#: a multipart delimiter (ends a part, were it the boundary).
HOSTILE = [
    'al"ice',
    'al\r\nContent-Disposition: form-data; name="creator"\r\n\r\nmallory',
    "--" + uuid.uuid4().hex + "\r\n--" + uuid.uuid4().hex + "--\r\n",
    "\r\n\r\n",
]
HOSTILE_IDS = ["quote", "crlf-header", "boundary-like", "blank-lines"]


@pytest.fixture
def archive(tmp_path) -> Path:
    path = tmp_path / "workspace.tar.gz"
    path.write_bytes(gzip.compress(b"not really a tar, but gzip: the parsers do not care"))
    return path


# --- aiohttp's multipart parser --------------------------------------------------------


async def _echo_form(request: web.Request) -> web.Response:
    """The submit route of a stand-in: the form as aiohttp parsed it, in the reply."""
    form = await request.post()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    upload = form["file"]
    assert isinstance(upload, web.FileField)
    file = {
        "filename": upload.filename,
        "type": upload.content_type,
        "size": len(upload.file.read()),
    }
    return web.json_response(
        {"code": 0, "msg": "Success", "uuid": JOB_UUID, "fields": fields, "file": file}
    )


@pytest.fixture
def aiohttp_api(jp_asyncio_loop):
    app = web.Application()
    app.router.add_post("/v1/job/submit/", _echo_form)
    runner = web.AppRunner(app)
    jp_asyncio_loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    jp_asyncio_loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    jp_asyncio_loop.run_until_complete(runner.cleanup())


def _values(field: str, value: str) -> dict[str, str]:
    """The three fields with ``value`` in ``field`` (the others ordinary)."""
    values = {"creator": "alice", "filename": "nb.ipynb", "envs": "K"}
    values[field] = value
    return values


def _envs(value: str) -> list[dict[str, str]]:
    return [{"key": "EXECUTION_STAGE", "value": value}]


@pytest.mark.parametrize("value", HOSTILE, ids=HOSTILE_IDS)
@pytest.mark.parametrize("field", ["creator", "filename", "envs"])
async def test_a_field_value_reaches_aiohttps_form_parser_intact(
    aiohttp_api, archive, field, value
) -> None:
    values = _values(field, value)
    client = ManateeApiClient(aiohttp_api, "tok")
    reply = await client.submit(
        archive, creator=values["creator"], filename=values["filename"], envs=_envs(values["envs"])
    )
    assert set(reply["fields"]) == {"creator", "filename", "envs"}
    assert reply["fields"]["creator"] == values["creator"]
    assert reply["fields"]["filename"] == values["filename"]
    assert json.loads(reply["fields"]["envs"]) == _envs(values["envs"])
    assert reply["file"] == {
        "filename": "workspace.tar.gz",
        "type": "application/gzip",
        "size": archive.stat().st_size,
    }


# --- Go's mime/multipart: the parser of the real API -------------------------------------


@pytest.fixture(scope="module")
def go_form_echo(tmp_path_factory) -> Path:
    """tests/go_form_echo built (once; Go's build cache keeps it for later runs)."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("no Go toolchain: the API's own form parser cannot be built here")
    binary = tmp_path_factory.mktemp("go") / "go_form_echo"
    subprocess.run(
        [go, "build", "-buildvcs=false", "-o", str(binary), "."],
        cwd=GO_SOURCE,
        check=True,
        timeout=600,
    )
    return binary


@pytest.fixture
def go_api(go_form_echo):
    child = subprocess.Popen(
        [str(go_form_echo)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())  # printed once it listens
        yield f"http://127.0.0.1:{port}"
    finally:
        child.kill()
        child.wait(timeout=10)


@pytest.mark.parametrize("value", HOSTILE, ids=HOSTILE_IDS)
@pytest.mark.parametrize("field", ["creator", "filename", "envs"])
async def test_a_field_value_reaches_gos_form_parser_intact(go_api, archive, field, value) -> None:
    values = _values(field, value)
    client = ManateeApiClient(go_api, "tok")
    reply = await client.submit(
        archive, creator=values["creator"], filename=values["filename"], envs=_envs(values["envs"])
    )
    fields = reply["fields"]
    assert set(fields) == {"creator", "filename", "envs"}
    assert fields["creator"] == [values["creator"]]
    assert fields["filename"] == [values["filename"]]
    assert [json.loads(v) for v in fields["envs"]] == [_envs(values["envs"])]
    assert reply["files"] == {
        "file": {
            "filename": "workspace.tar.gz",
            "type": "application/gzip",
            "size": archive.stat().st_size,
        }
    }


def test_a_form_urllib3_frames_otherwise_is_refused_before_sending(monkeypatch) -> None:
    """The archive goes where the empty file part's bytes were: if the encoder ever ends a
    form differently, cutting it there would corrupt the upload."""

    def without_final_crlf(fields):
        return b"--b\r\n...\r\n--b--", "multipart/form-data; boundary=b"

    monkeypatch.setattr(wire, "encode_multipart_formdata", without_final_crlf)
    with pytest.raises(RuntimeError, match="unexpected way"):
        wire.form("alice", "nb.ipynb", [])


# --- the upload's reply ----------------------------------------------------------------------


@pytest.fixture
def raw_api(jp_asyncio_loop):
    server = RawServer(lambda _n: with_length(ACCEPTED))
    jp_asyncio_loop.run_until_complete(server.start())
    yield server
    jp_asyncio_loop.run_until_complete(server.stop())


@pytest.mark.parametrize(
    "informational",
    [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"],
    ids=["100", "103"],
)
async def test_the_uploads_reply_after_a_1xx_reply_is_the_final_reply(
    raw_api, archive, informational
) -> None:
    raw_api.answer = lambda _n: informational + with_length(ACCEPTED)
    client = ManateeApiClient(raw_api.base, "tok")
    reply = await client.submit(archive, creator="alice", filename="nb.ipynb", envs=[])
    assert reply == {"code": 0, "msg": "Success", "uuid": JOB_UUID}


async def test_an_upload_reply_declaring_more_than_16_mib_is_refused_before_its_body(
    raw_api, archive
) -> None:
    """The stand-in sends the head and then nothing: only the declared length can end the
    call (otherwise the upload's timeout would, an ApiTimeout)."""
    never = asyncio.Event()

    async def head_then_silence(_n: int):
        yield b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (16 * 1024 * 1024 + 1)
        await never.wait()

    raw_api.answer = head_then_silence
    client = ManateeApiClient(raw_api.base, "tok", upload_timeout=5.0)
    with pytest.raises(ApiUnavailable, match="sent a reply larger than 16 MiB; stopped reading"):
        await client.submit(archive, creator="alice", filename="nb.ipynb", envs=[])
