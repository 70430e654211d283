"""Fixtures for the data SDK tests: real servers on 127.0.0.1 on free ports.

- ``emulator``: gcp-storage-emulator in this process (session), with a log of the
  request lines it served; ``gcs`` points the SDK at it for one test.
- ``google``: one HTTP server playing Google's STS (``/v1/token``), IAM Credentials
  (``generateAccessToken``), Cloud Resource Manager (``/v3/projects/<id>``), the GCE
  metadata server (``numeric-project-id``, only when ``metadata_number`` is set) and the
  OAuth token endpoint the default (authorized-user) credentials refresh at.
- ``https_files``: an HTTPS file server with a self-signed certificate that ``requests``
  trusts through ``REQUESTS_CA_BUNDLE``.
- ``denying_storage``: a storage endpoint that answers every request with 403.
"""

from __future__ import annotations

import datetime
import json
import logging
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sdk_support import (
    ADC_TOKEN,
    ATTESTATION_TOKEN,
    PROJECT_ID,
    PROJECT_NUMBER,
    SA_TOKEN,
    STS_TOKEN,
)

import sdk
import sdk.stage
from tests.self_signed import self_signed

SDK_ENV = (
    sdk.STAGE_ENV,
    "STORAGE_EMULATOR_HOST",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "REQUESTS_CA_BUNDLE",
    sdk.gcp.ENV_PROVIDER,
    sdk.gcp.ENV_PROJECT_NUMBER,
    sdk.gcp.ENV_TOKEN_PATH,
    sdk.gcp.ENV_STS_URL,
    sdk.gcp.ENV_IAM_CREDENTIALS_URL,
    sdk.gcp.ENV_RESOURCE_MANAGER_URL,
    sdk.gcp.ENV_METADATA_URL,
    "DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA",
)


def free_port() -> int:
    """Ask the OS for a free port (for servers that cannot bind port 0 themselves)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def clean_sdk(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with no stage, no Google settings and no cached SDK state."""
    for name in SDK_ENV:
        # setenv first so monkeypatch restores the variable's absence even when the SDK
        # itself sets it during the test (it sets the bucket-metadata switch).
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setattr(sdk.stage, "_warned_unset", False)
    sdk.gcp.reset()
    yield
    sdk.gcp.reset()


# --- GCS emulator ------------------------------------------------------------------


class _RequestLog(logging.Handler):
    """Keeps the request lines the emulator logs ('"GET /storage/v1/b/x HTTP/1.1" 200 -')."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@dataclass
class Emulator:
    url: str
    log: _RequestLog


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    from gcp_storage_emulator.server import create_server

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    log = _RequestLog()
    logger = logging.getLogger("gcp_storage_emulator.server")
    logger.addHandler(log)
    logger.setLevel(logging.INFO)
    server.start()
    try:
        yield Emulator(url=f"http://127.0.0.1:{port}", log=log)
    finally:
        server.stop()
        logger.removeHandler(log)


@dataclass
class Gcs:
    """The emulator, seeded through a plain anonymous storage client."""

    emulator: Emulator
    client: Any

    def put(self, bucket: str, name: str, data: bytes | str) -> None:
        found = self.client.lookup_bucket(bucket)
        if found is None:
            found = self.client.create_bucket(bucket)
        found.blob(name).upload_from_string(data)

    def requests(self) -> list[str]:
        return list(self.emulator.log.lines)


@pytest.fixture
def gcs(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gcs]:
    from google.cloud import storage

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
    client = storage.Client(project="test")
    emulator.log.lines.clear()
    yield Gcs(emulator=emulator, client=client)
    for bucket in client.list_buckets():
        for blob in client.list_blobs(bucket):
            blob.delete()
        bucket.delete()
    client.close()


# --- a small threaded HTTP(S) server --------------------------------------------------


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(self.body.decode()))

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"


def json_reply(status: int, value: Any) -> Reply:
    return Reply(status, json.dumps(value).encode())


class _Server:
    """Run ``route(call) -> Reply`` in a ThreadingHTTPServer and keep every call."""

    def __init__(self, route, context: ssl.SSLContext | None = None) -> None:
        self.calls: list[Call] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                call = Call(
                    method=self.command,
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length),
                )
                outer.calls.append(call)
                reply = route(call)
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)

            do_GET = do_POST = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if context is not None:
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --- Google endpoints: STS, IAM Credentials, Resource Manager, OAuth --------------


@dataclass
class Google:
    """Plays the Google endpoints stage 2 talks to; records every call."""

    url: str = ""
    calls: list[Call] = field(default_factory=list)
    sts_error: str | None = None
    metadata_number: str | None = None

    def paths(self) -> list[str]:
        return [call.path for call in self.calls]

    def sts_calls(self) -> list[Call]:
        return [c for c in self.calls if c.path == "/v1/token"]

    def iam_calls(self) -> list[Call]:
        return [c for c in self.calls if c.path.endswith(":generateAccessToken")]

    def crm_calls(self) -> list[Call]:
        return [c for c in self.calls if c.path.startswith("/v3/projects/")]

    def metadata_calls(self) -> list[Call]:
        return [c for c in self.calls if c.path.startswith("/computeMetadata/")]

    def route(self, call: Call) -> Reply:
        if call.method == "POST" and call.path == "/v1/token":
            if self.sts_error:
                return json_reply(
                    400, {"error": "invalid_grant", "error_description": self.sts_error}
                )
            return json_reply(
                200,
                {
                    "access_token": STS_TOKEN,
                    "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                    "token_type": "Bearer",
                    "expires_in": 3600,
                },
            )
        if call.method == "POST" and call.path.endswith(":generateAccessToken"):
            if call.headers.get("authorization") != f"Bearer {STS_TOKEN}":
                return json_reply(401, {"error": {"code": 401, "message": "no STS token"}})
            expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
            return json_reply(
                200, {"accessToken": SA_TOKEN, "expireTime": expiry.strftime("%Y-%m-%dT%H:%M:%SZ")}
            )
        if call.method == "POST" and call.path == "/oauth2/token":
            return json_reply(
                200, {"access_token": ADC_TOKEN, "expires_in": 3600, "token_type": "Bearer"}
            )
        if call.method == "GET" and call.path.startswith("/v3/projects/"):
            if call.headers.get("authorization") != f"Bearer {ADC_TOKEN}":
                return json_reply(401, {"error": {"code": 401, "message": "unauthenticated"}})
            project = call.path.rsplit("/", 1)[1]
            if project != PROJECT_ID:
                return json_reply(403, {"error": {"code": 403, "message": "denied"}})
            return json_reply(200, {"name": f"projects/{PROJECT_NUMBER}", "projectId": PROJECT_ID})
        if call.path == "/computeMetadata/v1/project/numeric-project-id":
            if self.metadata_number and call.headers.get("metadata-flavor") == "Google":
                return Reply(200, self.metadata_number.encode(), "application/text")
        return json_reply(404, {"error": {"code": 404, "message": f"no route {call.path}"}})


@pytest.fixture(scope="session")
def rsa_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture
def google(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rsa_key_pem: str) -> Iterator[Google]:
    """The Google endpoints, and default credentials (a service-account key file, as
    the TEE VM's own account) that refresh at them, so a project-number lookup has an
    identity to use."""
    state = Google()
    server = _Server(state.route)
    state.url = f"http://127.0.0.1:{server.port}"
    state.calls = server.calls
    adc = tmp_path / "adc.json"
    adc.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": PROJECT_ID,
                "private_key_id": "test-key",
                "private_key": rsa_key_pem,
                "client_email": f"vm-default@{PROJECT_ID}.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": f"{state.url}/oauth2/token",
            }
        )
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    yield state
    server.close()


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    """The attestation token file the TEE would provide."""
    path = tmp_path / "attestation_verifier_claims_token"
    path.write_text(ATTESTATION_TOKEN)
    return path


@pytest.fixture
def stage2_env(google: Google, token_file: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Stage 2 as the TEE sets it, with every Google endpoint pointed at ``google``."""
    env = {
        sdk.STAGE_ENV: '"2"',
        sdk.gcp.ENV_TOKEN_PATH: str(token_file),
        sdk.gcp.ENV_STS_URL: f"{google.url}/v1/token",
        sdk.gcp.ENV_IAM_CREDENTIALS_URL: google.url,
        sdk.gcp.ENV_RESOURCE_MANAGER_URL: google.url,
        sdk.gcp.ENV_METADATA_URL: google.url,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def denying_storage(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A storage endpoint that refuses every request (403), as GCS does without a role."""

    def route(call: Call) -> Reply:
        return json_reply(
            403,
            {"error": {"code": 403, "message": "caller does not have storage.objects.get access"}},
        )

    server = _Server(route)
    url = f"http://127.0.0.1:{server.port}"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
    yield url
    server.close()


# --- HTTPS file server -----------------------------------------------------------


@dataclass
class HttpsFiles:
    """Files served over HTTPS: ``files[path]``; paths under /private/ answer 403."""

    url: str
    files: dict[str, bytes]
    calls: list[Call]
    ca_bundle: str


@pytest.fixture(scope="session")
def _https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsFiles]:
    cert, key = self_signed(tmp_path_factory.mktemp("tls"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    files: dict[str, bytes] = {}

    def route(call: Call) -> Reply:
        if call.path.startswith("/private/"):
            return Reply(403, b"forbidden", "text/plain")
        if call.path in files:
            return Reply(200, files[call.path], "application/octet-stream")
        return Reply(404, b"not found", "text/plain")

    server = _Server(route, context)
    yield HttpsFiles(f"https://127.0.0.1:{server.port}", files, server.calls, str(cert))
    server.close()


@pytest.fixture
def https_files(_https_server: HttpsFiles, monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpsFiles]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", _https_server.ca_bundle)
    yield _https_server
    _https_server.files.clear()
    _https_server.calls.clear()


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test with the current directory in a fresh folder (the notebook's folder)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
