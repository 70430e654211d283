"""Real parts for the attestation tests: RSA keys made here, an OpenID issuer (discovery +
JWKS) and a small ManaTEE API on 127.0.0.1, each on its own thread, and the token cases.

A case is a function of (issuer, rogue issuer, now) giving the token, the output bytes and
the job, plus the verdict and the checks that must not pass. Every path (module, route,
command line) runs the same table.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt, jwt
from tornado import httpserver, web

from jupyterlab_manatee.attestation import (
    MOCK_BACKEND,
    NOT_VERIFIED,
    VERIFIED,
    VERIFIED_EXPIRED,
    JobFacts,
    Policy,
)
from jupyterlab_manatee.jobs.job_identity import identify_job

AUDIENCE = "https://research.tiktok.com/"
CREATOR = "alice"
JOB_ID = 7
JOB_UUID = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
#: Job uuids that are not in canonical form: none may identify a job.
NOT_CANONICAL = [
    pytest.param(f"bob-{JOB_UUID}", id="another creator's name before it"),
    pytest.param(JOB_UUID.upper(), id="upper case"),
    pytest.param("{" + JOB_UUID + "}", id="braces"),
    pytest.param(JOB_UUID + "\n", id="trailing newline"),
    pytest.param(" " + JOB_UUID, id="leading space"),
    pytest.param(JOB_UUID + "0", id="37 characters"),
    pytest.param(JOB_UUID[:-1], id="35 characters"),
    pytest.param(f"urn:uuid:{JOB_UUID}", id="urn prefix"),
    pytest.param(JOB_UUID.replace("-", ""), id="no hyphens"),
    pytest.param(JOB_UUID[:-1] + "g", id="not hex"),
]
# The deployment the tokens' VMs belong to, as an operator pins it.
PROJECT = "manatee-prod-4711"
SERVICE_ACCOUNT = "dcr-prod-cvm-sa@manatee-prod-4711.iam.gserviceaccount.com"
IMAGE_REPOSITORY = "us-docker.pkg.dev/manatee-prod-4711/jobs"
IMAGE_DIGEST = "sha256:" + "ab" * 32
PINS = {
    "project_id": PROJECT,
    "tee_service_accounts": [SERVICE_ACCOUNT],
    "image_repository": IMAGE_REPOSITORY,
}
# Every check, in the order the verifier lists them (written here, not read from the code).
CHECK_NAMES = (
    "token",
    "algorithm",
    "issuer",
    "signature",
    "audience",
    "nonce",
    "swname",
    "dbgstat",
    "support_attributes",
    "secboot",
    "hwmodel",
    "project_id",
    "service_account",
    "image",
    "image_digest",
    "job",
    "instance_name",
    "issued_at",
    "expiry",
)
# Bytes as the storage serves them: re-serialising this JSON would change them.
OUTPUT = (
    b'{\n "cells": [{"cell_type": "markdown", "metadata": {}, "source": ["caf\xc3\xa9"]}],\n'
    b' "metadata": {},\n "nbformat": 4,\n "nbformat_minor": 5\n}\n'
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def api_time(seconds: float) -> str:
    """The API's timestamp format: UTC, no zone."""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


class ThreadedServer:
    """A tornado application on a free 127.0.0.1 port, served by its own thread and loop,
    so blocking callers (a subprocess) and other loops can both reach it."""

    def __init__(self, handlers: list[tuple]) -> None:
        self._handlers = handlers
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> ThreadedServer:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.setblocking(False)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop

            async def listen() -> httpserver.HTTPServer:
                server = httpserver.HTTPServer(web.Application(self._handlers))
                server.add_sockets([sock])
                return server

            server = loop.run_until_complete(listen())
            ready.set()
            loop.run_forever()
            server.stop()
            loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        """Stop serving; a second call does nothing."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = self._thread = None


Served = TypeVar("Served", bound="ServedOnAThread")


class ServedOnAThread:
    """A stand-in whose routes a :class:`ThreadedServer` serves (``self._server``)."""

    _server: ThreadedServer

    @property
    def url(self) -> str:
        return self._server.url

    def start(self: Served) -> Served:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()


class _IssuerHandler(web.RequestHandler):
    def initialize(self, issuer: Issuer) -> None:
        self.issuer = issuer

    def get(self, path: str) -> None:
        self.issuer.hits[path] += 1
        if path == ".well-known/openid-configuration":
            self.write(self.issuer.discovery())
        elif path == "keys" and self.issuer.keys_redirect is not None:
            self.redirect(self.issuer.keys_redirect, status=302)
        elif path in ("keys", "keys-moved"):
            self.write(self.issuer.jwks())
        else:
            self.send_error(404)


class Issuer(ServedOnAThread):
    """An RS256 token issuer like Confidential Space's: a key, discovery, a JWKS."""

    def __init__(self, name: str, key_size: int = 2048) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        self.kid = f"{name}-key-1"
        self.signer = crypt.RSASigner.from_string(private_pem(self.key), key_id=self.kid)
        self.hits: Counter[str] = Counter()
        self.discovery_issuer: str | None = None  # None: its own URL
        #: Hostile settings: /keys answers 302 to this; the JWKS carries this many bytes
        #: of padding (an extra member).
        self.keys_redirect: str | None = None
        self.jwks_padding = 0
        self._server = ThreadedServer([(r"/(.*)", _IssuerHandler, {"issuer": self})])

    def discovery(self) -> dict[str, Any]:
        issuer = self.discovery_issuer or self.url
        return {"issuer": issuer, "jwks_uri": f"{self.url}/keys"}

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        jwk = {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": b64url_uint(numbers.n),
            "e": b64url_uint(numbers.e),
        }
        if self.jwks_padding:
            return {"keys": [jwk], "padding": "x" * self.jwks_padding}
        return {"keys": [jwk]}

    def mint(self, claims: dict[str, Any], signer: crypt.Signer | None = None) -> str:
        return jwt.encode(signer or self.signer, claims).decode("ascii")

    def key_fetches(self) -> int:
        return self.hits["keys"]


def private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def other_signer(kid: str) -> crypt.RSASigner:
    """A key nobody publishes, under the given ``kid``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return crypt.RSASigner.from_string(private_pem(key), key_id=kid)


class _ApiHandler(web.RequestHandler):
    def initialize(self, api: FakeApi) -> None:
        self.api = api

    def check_xsrf_cookie(self) -> None:
        """Not a browser-facing server."""

    def get(self, path: str) -> None:
        self.api.seen.append(path)
        if path == "health":
            self.write({"message": "pong"})
        elif path == "files/out":
            self.write(self.api.output)
        elif path == "files/token" and self.api.token is not None:
            self.write(self.api.token)
        else:
            self.set_status(404)
            self.write("<Error><Code>NoSuchKey</Code></Error>")

    def post(self, path: str) -> None:
        self.api.seen.append(path)
        job = self.api.job
        if path == "v1/job/query/":
            rows = [listed_row(job, **self.api.relabel)] if not self.api.hide_job else []
            self.write({"code": 0, "msg": "Success", "jobs": rows, "total": len(rows)})
        elif path == "v1/job/output/download/":
            self.write(
                {
                    "code": 0,
                    "msg": "Success",
                    "signed_url": f"{self.api.url}/files/out",
                    "filename": "out-7-nb.ipynb",
                }
            )
        elif path == "v1/job/attestation/":
            url = f"{self.api.url}/files/token"
            self.write({"code": 0, "msg": "Success", "signed_url": url})
        elif path == "v1/job/submit/":
            self.write({"code": 0, "msg": "Success", "uuid": self.api.submit_uuid})
        else:
            self.write({"code": 10001, "msg": "record not found"})


class FakeApi(ServedOnAThread):
    """The ManaTEE API's routes for one finished job, serving a chosen output and token
    (``token`` None: storage answers 404 for it); its submit route takes any upload and
    answers ``submit_uuid``."""

    def __init__(self) -> None:
        self.output = OUTPUT
        self.token: str | None = None
        self.job = JobFacts(id=JOB_ID, uuid=JOB_UUID, creator=CREATOR)
        self.seen: list[str] = []
        #: Hostile modes: leave the job out of the list, or list it with other fields.
        self.hide_job = False
        self.relabel: dict[str, Any] = {}
        #: The uuid its submit route answers with.
        self.submit_uuid = JOB_UUID
        self._server = ThreadedServer([(r"/(.*)", _ApiHandler, {"api": self})])

    def serve(self, scenario: Scenario) -> None:
        self.output, self.token, self.job = scenario.output, scenario.token, scenario.job


# --- the cases -------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    token: str
    output: bytes
    job: JobFacts


@dataclass(frozen=True)
class Case:
    """``make(issuer, rogue, now)``; ``not_passing`` maps each check that does not pass to
    its status (every other check must pass)."""

    make: Callable[[Issuer, Issuer, float], Scenario]
    verdict: str
    not_passing: dict[str, str] = field(default_factory=dict)
    reason_has: dict[str, str] = field(default_factory=dict)
    #: Changes to the pinned policy (``Policy`` fields); such cases run where a policy
    #: can be given per case (the module and the command line).
    policy: dict[str, Any] = field(default_factory=dict)
    #: The job facts come from a hostile job list (identify_job), not from the server:
    #: the routes meet these through FakeApi's hostile modes instead.
    hostile_list: bool = False

    def expected_statuses(self) -> dict[str, str]:
        return {name: self.not_passing.get(name, "pass") for name in CHECK_NAMES}


def job_around(issued: float) -> JobFacts:
    """A job created before ``issued`` and last updated just after it."""
    return JobFacts(
        id=JOB_ID,
        uuid=JOB_UUID,
        creator=CREATOR,
        created_at=api_time(issued - 600),
        updated_at=api_time(issued + 20),
    )


def production_claims(iss: str, nonce: str, issued: float) -> dict[str, Any]:
    """What Confidential Space puts in a token of a production run of this job."""
    iat = int(issued)
    return {
        "aud": AUDIENCE,
        "iss": iss,
        "sub": f"https://www.googleapis.com/compute/v1/projects/{PROJECT}/zones/us-west1-b/instances/2",
        "iat": iat,
        "nbf": iat,
        "exp": iat + 3600,
        "eat_nonce": nonce,
        "eat_profile": "https://cloud.google.com/confidential-computing/confidential-space/docs/reference/token-claims",
        "secboot": True,
        "oemid": 11129,
        "hwmodel": "GCP_INTEL_TDX",
        "swname": "CONFIDENTIAL_SPACE",
        "swversion": ["250301"],
        "dbgstat": "disabled-since-boot",
        "google_service_accounts": [SERVICE_ACCOUNT],
        "submods": {
            "confidential_space": {"support_attributes": ["LATEST", "STABLE", "USABLE"]},
            "container": {
                "image_reference": f"{IMAGE_REPOSITORY}/{CREATOR}-{JOB_UUID}@{IMAGE_DIGEST}",
                "image_digest": IMAGE_DIGEST,
                "restart_policy": "Never",
                "env_override": {"EXECUTION_STAGE": "2"},
            },
            "gce": {
                "zone": "us-west1-b",
                "project_id": PROJECT,
                "project_number": "80415913",
                "instance_name": f"{CREATOR}-{JOB_UUID}",
                "instance_id": "2",
            },
        },
    }


def _good_with(
    change: Callable[[dict[str, Any]], None] | None = None, *, age: float = 60
) -> Callable[[Issuer, Issuer, float], Scenario]:
    def make(issuer: Issuer, rogue: Issuer, now: float) -> Scenario:
        issued = now - age
        claims = production_claims(issuer.url, md5(OUTPUT), issued)
        if change:
            change(claims)
        return Scenario(issuer.mint(claims), OUTPUT, job_around(issued))

    return make


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(claims: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = claims
        for part in parents:
            target = target[part]
        target[last] = value

    return change


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def change(claims: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = claims
        for part in parents:
            target = target[part]
        del target[last]

    return change


def listed_row(job: JobFacts, **changes: Any) -> dict[str, Any]:
    """The API's job list row for ``job``, with ``changes``."""
    row = {
        "id": job.id,
        "uuid": job.uuid,
        "creator": job.creator,
        "job_status": 5,
        "jupyter_file_name": "nb.ipynb",
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    }
    return {**row, **changes}


OTHER_UUID = "ffffffff-0000-4000-8000-000000000000"


def _as_listed(**identify: Any) -> Callable[[Issuer, Issuer, float], Scenario]:
    """A genuine token, the job identified from a job list that lies (see identify_job)."""

    def make(issuer: Issuer, rogue: Issuer, now: float) -> Scenario:
        good = _good_with()(issuer, rogue, now)
        honest = listed_row(good.job)
        listed = identify.get("listed", honest)
        if callable(listed):
            listed = listed(honest)
        job = identify_job(
            CREATOR,
            JOB_ID,
            listed=listed,
            record_uuid=identify.get("record_uuid"),
        )
        return Scenario(good.token, good.output, job)

    return make


def _job_window_long_before(issuer: Issuer, rogue: Issuer, now: float) -> Scenario:
    good = _good_with()(issuer, rogue, now)
    return Scenario(good.token, good.output, job_around(now - 3 * 3600))


def _one_byte_changed(issuer: Issuer, rogue: Issuer, now: float) -> Scenario:
    good = _good_with()(issuer, rogue, now)
    changed = bytearray(good.output)
    changed[changed.index(b"caf")] = ord("C")
    return Scenario(good.token, bytes(changed), good.job)


def _wrong_issuer(issuer: Issuer, rogue: Issuer, now: float) -> Scenario:
    issued = now - 60
    return Scenario(
        rogue.mint(production_claims(rogue.url, md5(OUTPUT), issued)), OUTPUT, job_around(issued)
    )


def _bad_signature(issuer: Issuer, rogue: Issuer, now: float) -> Scenario:
    """A genuine token for another output, its nonce swapped for this output's."""
    issued = now - 60
    genuine = issuer.mint(production_claims(issuer.url, md5(b"another output"), issued))
    header, _, signature = genuine.split(".")
    forged = production_claims(issuer.url, md5(OUTPUT), issued)
    payload = b64url(json.dumps(forged).encode())
    return Scenario(f"{header}.{payload}.{signature}", OUTPUT, job_around(issued))


def _unknown_kid(issuer: Issuer, rogue: Issuer, now: float) -> Scenario:
    issued = now - 60
    claims = production_claims(issuer.url, md5(OUTPUT), issued)
    return Scenario(issuer.mint(claims, other_signer("unpublished")), OUTPUT, job_around(issued))


def _unsigned(alg: str) -> Callable[[Issuer, Issuer, float], Scenario]:
    """``alg`` "none" (no signature), or "HS256" keyed with the issuer's public key (the
    classic algorithm-confusion forgery)."""

    def make(issuer: Issuer, rogue: Issuer, now: float) -> Scenario:
        issued = now - 60
        claims = production_claims(issuer.url, md5(OUTPUT), issued)
        header = {"alg": alg, "typ": "JWT", "kid": issuer.kid}
        signed = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        signature = ""
        if alg == "HS256":
            public = issuer.key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            signature = b64url(hmac.new(public, signed.encode(), hashlib.sha256).digest())
        return Scenario(f"{signed}.{signature}", OUTPUT, job_around(issued))

    return make


def _garbage(issuer: Issuer, rogue: Issuer, now: float) -> Scenario:
    return Scenario("this is not a token at all", OUTPUT, job_around(now))


def _mock(nonce_of: bytes) -> Callable[[Issuer, Issuer, float], Scenario]:
    def make(issuer: Issuer, rogue: Issuer, now: float) -> Scenario:
        return Scenario(f"mock tee token with nonce {md5(nonce_of)}", OUTPUT, job_around(now))

    return make


ALL_NA = {name: "n/a" for name in CHECK_NAMES}
MOCK_NA = {**ALL_NA, "token": "pass", "nonce": "pass"}

CASES: dict[str, Case] = {
    "good": Case(_good_with(), VERIFIED),
    "output changed by one byte": Case(
        _one_byte_changed, NOT_VERIFIED, {"nonce": "fail"}, {"nonce": "not the attested output"}
    ),
    "wrong issuer": Case(
        _wrong_issuer,
        NOT_VERIFIED,
        {"issuer": "fail", "signature": "n/a"},
        {"issuer": "not a trusted issuer"},
    ),
    "wrong audience": Case(
        _good_with(_set("aud", "https://elsewhere.example/")),
        NOT_VERIFIED,
        {"audience": "fail"},
        {"audience": "elsewhere"},
    ),
    "debug image": Case(
        _good_with(_set("dbgstat", "enabled")),
        NOT_VERIFIED,
        {"dbgstat": "fail"},
        {"dbgstat": "debug image"},
    ),
    "missing STABLE": Case(
        _good_with(_set("submods.confidential_space.support_attributes", ["LATEST", "USABLE"])),
        NOT_VERIFIED,
        {"support_attributes": "fail"},
        {"support_attributes": "without STABLE"},
    ),
    "another job's instance name": Case(
        _good_with(_set("submods.gce.instance_name", "alice-ffffffff-0000-0000-0000-000000000000")),
        NOT_VERIFIED,
        {"instance_name": "fail"},
        {"instance_name": "another job's token"},
    ),
    "expired": Case(
        _good_with(age=2 * 3600),
        VERIFIED_EXPIRED,
        {"expiry": "n/a"},
        {"expiry": "expired since"},
    ),
    "bad signature": Case(
        _bad_signature,
        NOT_VERIFIED,
        {"signature": "fail"},
        {"signature": "does not match"},
    ),
    "unknown kid": Case(
        _unknown_kid, NOT_VERIFIED, {"signature": "fail"}, {"signature": "unpublished"}
    ),
    "alg none": Case(
        _unsigned("none"),
        NOT_VERIFIED,
        {"algorithm": "fail", "signature": "n/a"},
        {"algorithm": "'none'"},
    ),
    "alg HS256": Case(
        _unsigned("HS256"),
        NOT_VERIFIED,
        {"algorithm": "fail", "signature": "n/a"},
        {"algorithm": "'HS256'"},
    ),
    "other project": Case(
        _good_with(_set("submods.gce.project_id", "someone-elses-project")),
        NOT_VERIFIED,
        {"project_id": "fail"},
        {"project_id": "not the pinned"},
    ),
    "other service account": Case(
        _good_with(
            _set("google_service_accounts", ["cvm@someone-elses-project.iam.gserviceaccount.com"])
        ),
        NOT_VERIFIED,
        {"service_account": "fail"},
        {"service_account": "none of the pinned"},
    ),
    "no google_service_accounts": Case(
        _good_with(_delete("google_service_accounts")),
        NOT_VERIFIED,
        {"service_account": "fail"},
        {"service_account": "no google_service_accounts"},
    ),
    "image of another job": Case(
        _good_with(
            _set(
                "submods.container.image_reference",
                f"{IMAGE_REPOSITORY}/{CREATOR}-{OTHER_UUID}@{IMAGE_DIGEST}",
            )
        ),
        NOT_VERIFIED,
        {"image": "fail"},
        {"image": "another job's image"},
    ),
    "image outside the pinned repository": Case(
        _good_with(
            _set(
                "submods.container.image_reference",
                f"docker.io/someone/{CREATOR}-{JOB_UUID}@{IMAGE_DIGEST}",
            )
        ),
        NOT_VERIFIED,
        {"image": "fail"},
        {"image": "not in the pinned repository"},
    ),
    "image digest mismatch": Case(
        _good_with(_set("submods.container.image_digest", "sha256:" + "cd" * 32)),
        NOT_VERIFIED,
        {"image_digest": "fail"},
        {"image_digest": "the container ran"},
    ),
    "image named by tag": Case(
        _good_with(
            _set(
                "submods.container.image_reference",
                f"{IMAGE_REPOSITORY}/{CREATOR}-{JOB_UUID}:latest",
            )
        ),
        VERIFIED,
        {"image_digest": "n/a"},
        {"image_digest": "named by tag"},
    ),
    "no deployment pinned": Case(
        _good_with(),
        NOT_VERIFIED,
        {"project_id": "fail", "service_account": "fail"},
        {"project_id": "MANATEE_PROJECT_ID", "service_account": "MANATEE_TEE_SERVICE_ACCOUNTS"},
        policy={"project_id": None, "service_accounts": ()},
    ),
    "job missing from the list": Case(
        _as_listed(listed=None),
        NOT_VERIFIED,
        {"job": "fail", "instance_name": "fail", "image": "fail", "issued_at": "fail"},
        {"job": "not in the API's job list", "issued_at": "not known"},
        hostile_list=True,
    ),
    "job listed under another creator": Case(
        _as_listed(listed=lambda row: {**row, "creator": "bob"}),
        NOT_VERIFIED,
        {"job": "fail", "instance_name": "fail", "image": "fail", "issued_at": "fail"},
        {"job": "under creator 'bob'"},
        hostile_list=True,
    ),
    "uuid differs from our record": Case(
        _as_listed(record_uuid=OTHER_UUID),
        NOT_VERIFIED,
        {"job": "fail", "instance_name": "fail", "image": "fail", "issued_at": "fail"},
        {"job": "submitted it as", "instance_name": "not identified"},
        hostile_list=True,
    ),
    "iat outside the job window": Case(
        _job_window_long_before,
        NOT_VERIFIED,
        {"issued_at": "fail"},
        {"issued_at": "outside the job"},
    ),
    "swname GCE": Case(
        _good_with(_set("swname", "GCE")), NOT_VERIFIED, {"swname": "fail"}, {"swname": "'GCE'"}
    ),
    "secboot false": Case(
        _good_with(_set("secboot", False)),
        NOT_VERIFIED,
        {"secboot": "fail"},
        {"secboot": "not true"},
    ),
    "hwmodel not allowed": Case(
        _good_with(_set("hwmodel", "GCP_AMD_SEV")),
        NOT_VERIFIED,
        {"hwmodel": "fail"},
        {"hwmodel": "GCP_AMD_SEV"},
    ),
    "nbf in the future": Case(
        _good_with(lambda claims: claims.update(nbf=claims["iat"] + 7200)),
        NOT_VERIFIED,
        {"expiry": "fail"},
        {"expiry": "not valid before"},
    ),
    "a nonce list without our MD5": Case(
        _good_with(_set("eat_nonce", [md5(b"first"), md5(b"second")])),
        NOT_VERIFIED,
        {"nonce": "fail"},
        {"nonce": "not the attested output"},
    ),
    "a nonce list with our MD5": Case(
        _good_with(_set("eat_nonce", [md5(b"first"), md5(OUTPUT)])),
        VERIFIED,
    ),
    "garbage": Case(
        _garbage, NOT_VERIFIED, {**ALL_NA, "token": "fail"}, {"token": "cannot be read"}
    ),
    "mock format": Case(_mock(OUTPUT), MOCK_BACKEND, MOCK_NA, {"token": "mock"}),
    "mock format, other output": Case(
        _mock(b"other"), NOT_VERIFIED, {**MOCK_NA, "nonce": "fail"}, {"nonce": "eat_nonce"}
    ),
}


def pinned(issuer: Issuer, **changes: Any) -> Policy:
    """The policy of a deployment whose TEE tokens ``issuer`` signs, pinned as an operator would."""
    policy = {
        "trusted_issuers": (issuer.url,),
        "project_id": PROJECT,
        "service_accounts": (SERVICE_ACCOUNT,),
        "image_repository": IMAGE_REPOSITORY,
    }
    return Policy(**{**policy, **changes})


def assert_result(result: dict[str, Any], case: Case) -> None:
    """The verdict, every check's status and the telling words of its reason."""
    statuses = {c["name"]: c["status"] for c in result["checks"]}
    assert [c["name"] for c in result["checks"]] == list(CHECK_NAMES)
    assert (result["verdict"], statuses) == (case.verdict, case.expected_statuses()), result
    assert result["verified"] is (case.verdict in (VERIFIED, VERIFIED_EXPIRED))
    reasons = {c["name"]: c["reason"] for c in result["checks"]}
    for name, words in case.reason_has.items():
        assert words in reasons[name], (name, reasons[name])
    assert all(reason for reason in reasons.values())
    assert result["summary"]


@pytest.fixture(scope="session", name="issuer")
def issuer_fixture():
    """The trusted issuer (what Confidential Space is in production)."""
    server = Issuer("trusted").start()
    yield server
    server.stop()


@pytest.fixture(scope="session", name="rogue")
def rogue_fixture():
    """An issuer nobody trusts; it must never be asked for its keys."""
    server = Issuer("rogue").start()
    yield server
    server.stop()


def make_scenario(case: Case, issuer: Issuer, rogue: Issuer) -> Scenario:
    return case.make(issuer, rogue, time.time())
