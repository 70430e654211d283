"""The contract cases: every route the extension uses, with the odd inputs a user or a
client can send. Each case drives a target through a `Recorder`; its exchanges are
compared with the real API's recording of the same case.

`DELIBERATE` names the local backend's deliberate differences, each with its reason;
a case that meets one says so by name (``Case.differs``) and what the local backend
answers instead (``Case.local``).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from contract_support import Exchange, Recorder, Target, notebook_bytes, workspace_archive

CREATOR = "alice"
OTHER = "bob"
NOTEBOOK = notebook_bytes("print('contract')")
ARCHIVE = workspace_archive(CREATOR, {"nb.ipynb": NOTEBOOK})
OUTPUT = notebook_bytes("print('contract')", "print('executed')")
TOKEN_TEXT = "mock tee token with nonce 0123456789abcdef0123456789abcdef"

#: The local backend's deliberate differences from the real API, each with its reason.
DELIBERATE = {
    "api-token": (
        "manatee-local runs notebooks on the user's own machine, so every job route, "
        "attestation included, requires its API token (Authorization equal to the token, "
        "not merely present); its refusal is HTTP 200, code 10001, in its own words."
    ),
    "host-origin": (
        "manatee-local refuses a foreign Host (DNS rebinding) or a browser Origin "
        "(cross-site requests from a web page) with HTTP 403: a web page must not be "
        "able to run code on the user's machine."
    ),
    "signed-url-form": (
        "manatee-local serves its own files: its signed URLs are "
        "<base>/storage/outputs/<uuid>/<name>?expires=..&signature=.. (HMAC, 1 h), not a "
        "store's presigned URL. Both are plain GET URLs; a missing object answers 404."
    ),
    "parser-words": (
        "A body or envs field the JSON parser cannot read is refused with upstream's words "
        "up to the parser's own explanation (bind body failed, err=...; using '...' to "
        "unmarshal field 'Envs: []*job.Env' failed, ...); the explanation itself is "
        "Python's json module's, not upstream's Go parser's (sonic)."
    ),
    "status-reason": (
        "manatee-local adds status_reason to each job (why it failed, in words); the "
        "real API has no such field. Clients must not need it (the extension does not)."
    ),
}


@dataclass
class Case:
    """One contract case."""

    name: str
    about: str
    run: Callable[[Recorder, Target], None]
    #: A deliberate difference (a key of DELIBERATE) that makes the local reply differ.
    differs: str | None = None
    #: What the local backend answers instead, checked on its exchanges.
    local: Callable[[list[Exchange]], None] | None = None
    #: How the extension's client reads each exchange: "ok", or an error class name.
    reads: list[str | None] = field(default_factory=list)


CASES: dict[str, Case] = {}


def case(
    about: str,
    *,
    differs: str | None = None,
    local: Callable[[list[Exchange]], None] | None = None,
    reads: list[str | None] | None = None,
) -> Callable[[Callable[[Recorder, Target], None]], Callable[[Recorder, Target], None]]:
    def register(fn: Callable[[Recorder, Target], None]) -> Callable[[Recorder, Target], None]:
        name = fn.__name__
        CASES[name] = Case(name, about, fn, differs, local, reads or [])
        return fn

    return register


def submitted(rec: Recorder, creator: str = CREATOR, filename: str = "nb.ipynb") -> str:
    response = rec.submit(
        workspace_archive(creator, {filename: NOTEBOOK}), creator=creator, filename=filename
    )
    reply = response.json()
    assert reply["code"] == 0, reply
    return reply["uuid"]


def query(rec: Recorder, creator: str = CREATOR, **extra: Any) -> Any:
    body = {"page": 1, "page_size": 10, "creator": creator, **extra}
    return rec.post_json("/v1/job/query/", body).json()


def refused_with_token_words(*indexes: int) -> Callable[[list[Exchange]], None]:
    """The local backend's token refusal at these exchanges: HTTP 200, code 10001."""

    def check(exchanges: list[Exchange]) -> None:
        for index in indexes:
            exchange = exchanges[index]
            assert exchange.status == 200, exchange
            assert exchange.body["code"] == 10001, exchange
            assert "'required' parameter" in exchange.body["msg"] or (
                "API token" in exchange.body["msg"]
            ), exchange

    return check


def forbidden(exchanges: list[Exchange]) -> None:
    assert exchanges[0].status == 403, exchanges[0]
    assert exchanges[0].body["code"] == 10001, exchanges[0]


# -- health ------------------------------------------------------------------------------
@case("GET /health answers pong", reads=[None])
def health(rec: Recorder, target: Target) -> None:
    rec.request("GET", "/health", auth=False)


@case("a method the route does not have is 404 (not 405)", reads=["ApiUnavailable"])
def health_wrong_method(rec: Recorder, target: Target) -> None:
    rec.request("POST", "/health", auth=False)


# -- submit ------------------------------------------------------------------------------
@case("a workspace archive is accepted: code 0, Success, a uuid", reads=["ok"])
def submit_accepted(rec: Recorder, target: Target) -> None:
    rec.submit(ARCHIVE, creator=CREATOR)


@case("a file that is not gzip is refused at submit; no job is made", reads=["ApiRefused", "ok"])
def submit_not_gzip(rec: Recorder, target: Target) -> None:
    rec.submit(b"PK\x03\x04 a zip, not a gzip tar", creator=CREATOR, what="a zip")
    query(rec)


@case("a gzip that is not a tar is refused at submit; no job is made", reads=["ApiRefused", "ok"])
def submit_gzip_not_tar(rec: Recorder, target: Target) -> None:
    rec.submit(gzip.compress(b"hello, not a tar\n" * 40), creator=CREATOR, what="gzip text")
    query(rec)


@case("a filename with a folder passes (the API keeps it as it is)", reads=["ok", "ok"])
def submit_filename_in_folder(rec: Recorder, target: Target) -> None:
    rec.submit(ARCHIVE, creator=CREATOR, filename="sub/nb.ipynb")
    query(rec)


@case("an env key that is not a variable name passes", reads=["ok"])
def submit_env_key_not_a_name(rec: Recorder, target: Target) -> None:
    rec.submit(ARCHIVE, creator=CREATOR, envs=json.dumps([{"key": "1BAD", "value": "v"}]))


@case("envs that are not JSON", differs="parser-words", reads=["ApiRefused"])
def submit_envs_not_json(rec: Recorder, target: Target) -> None:
    rec.submit(ARCHIVE, creator=CREATOR, envs="{")


@case("envs left out", reads=["ok"])
def submit_envs_missing(rec: Recorder, target: Target) -> None:
    rec.submit(ARCHIVE, creator=CREATOR, envs=None)


@case("a filename that does not end in .ipynb passes: submit validates nothing", reads=["ok"])
def submit_filename_not_ipynb(rec: Recorder, target: Target) -> None:
    rec.submit(ARCHIVE, creator=CREATOR, filename="nb.py")


@case("a filename of 128 characters passes", reads=["ok"])
def submit_filename_128(rec: Recorder, target: Target) -> None:
    rec.submit(ARCHIVE, creator=CREATOR, filename="a" * 122 + ".ipynb")


@case("a filename with .. passes", reads=["ok"])
def submit_filename_dots(rec: Recorder, target: Target) -> None:
    rec.submit(ARCHIVE, creator=CREATOR, filename="..nb.ipynb")


@case("no filename passes (an empty name)", reads=["ok"])
def submit_filename_missing(rec: Recorder, target: Target) -> None:
    rec.submit(ARCHIVE, creator=CREATOR, filename=None)


@case("a creator of 32 characters passes at submit", reads=["ok"])
def submit_creator_32(rec: Recorder, target: Target) -> None:
    rec.submit(workspace_archive("a" * 32, {"nb.ipynb": NOTEBOOK}), creator="a" * 32)


@case("a creator with .. passes at submit", reads=["ok"])
def submit_creator_dots(rec: Recorder, target: Target) -> None:
    rec.submit(ARCHIVE, creator="al..ice")


@case("no creator passes at submit (an empty creator)", reads=["ok"])
def submit_creator_missing(rec: Recorder, target: Target) -> None:
    rec.submit(ARCHIVE, creator=None)


@case("a form without its file part: the handler panics (HTTP 500)", reads=["ApiUnavailable"])
def submit_without_file(rec: Recorder, target: Target) -> None:
    rec.submit(None, creator=CREATOR)


@case("a body that is not a multipart form: the handler panics", reads=["ApiUnavailable"])
def submit_not_multipart(rec: Recorder, target: Target) -> None:
    rec.post_json("/v1/job/submit/", {"creator": CREATOR, "filename": "nb.ipynb"})


@case("no Authorization header: upstream checks only that it is there", reads=["ApiRefused"])
def submit_without_token(rec: Recorder, target: Target) -> None:
    rec.submit(ARCHIVE, creator=CREATOR, auth=False)


@case(
    "the fourth job in progress is refused with the limit's words",
    reads=["ok", "ok", "ok", "JobLimitReached", "ok"],
)
def submit_job_limit(rec: Recorder, target: Target) -> None:
    for _ in range(4):
        rec.submit(ARCHIVE, creator=CREATOR)
    query(rec)


@case(
    "a job that left statuses 0, 1, 3, 4 frees its place",
    reads=["ok", "ok", "ok", "ok"],
)
def submit_limit_counts_in_progress(rec: Recorder, target: Target) -> None:
    uuids = [rec.submit(ARCHIVE, creator=CREATOR).json()["uuid"] for _ in range(3)]
    target.advance(uuids[0], 5)
    rec.submit(ARCHIVE, creator=CREATOR)


@case("the limit is per creator", reads=["ok", "ok", "ok", "ok"])
def submit_limit_per_creator(rec: Recorder, target: Target) -> None:
    for _ in range(3):
        rec.submit(ARCHIVE, creator=CREATOR)
    rec.submit(workspace_archive(OTHER, {"nb.ipynb": NOTEBOOK}), creator=OTHER)


@case("submit without its trailing slash: 307 to the bare slash path", reads=[None])
def submit_without_slash(rec: Recorder, target: Target) -> None:
    rec.submit(ARCHIVE, creator=CREATOR, path="/v1/job/submit")


@case("without the trailing slash and without a token: still the 307", reads=[None])
def submit_without_slash_or_token(rec: Recorder, target: Target) -> None:
    rec.submit(ARCHIVE, creator=CREATOR, path="/v1/job/submit", auth=False)


# -- query -------------------------------------------------------------------------------
@case(
    "a creator's jobs with the total; another creator's are not listed",
    reads=["ok", "ok", "ok", "ok"],
)
def query_jobs(rec: Recorder, target: Target) -> None:
    submitted(rec, CREATOR, "one.ipynb")
    submitted(rec, OTHER, "other.ipynb")
    submitted(rec, CREATOR, "two.ipynb")
    query(rec)


@case("pages come in id order (oldest first)", reads=["ok"] * 6)
def query_pages_in_id_order(rec: Recorder, target: Target) -> None:
    for index in range(4):
        target.advance(submitted(rec, CREATOR, f"nb{index}.ipynb"), 2)
    query(rec, page_size=3)
    query(rec, page=2, page_size=3)


@case("a job's status as the reconciler set it", reads=["ok", "ok"])
def query_advanced_status(rec: Recorder, target: Target) -> None:
    target.advance(submitted(rec), 5)
    query(rec)


@case("page_size 0", reads=["ok", "ok"])
def query_page_size_0(rec: Recorder, target: Target) -> None:
    submitted(rec)
    query(rec, page_size=0)


@case("page_size 101", reads=["ok", "ok"])
def query_page_size_101(rec: Recorder, target: Target) -> None:
    submitted(rec)
    query(rec, page_size=101)


@case("page_size -1", reads=["ok", "ok"])
def query_page_size_negative(rec: Recorder, target: Target) -> None:
    submitted(rec)
    query(rec, page_size=-1)


@case("page_size left out", reads=["ok", "ok"])
def query_page_size_missing(rec: Recorder, target: Target) -> None:
    submitted(rec)
    rec.post_json("/v1/job/query/", {"page": 1, "creator": CREATOR})


@case("page 0", reads=["ApiRefused"])
def query_page_0(rec: Recorder, target: Target) -> None:
    query(rec, page=0)


@case("page left out", reads=["ApiRefused"])
def query_page_missing(rec: Recorder, target: Target) -> None:
    rec.post_json("/v1/job/query/", {"page_size": 10, "creator": CREATOR})


@case("page as a string", differs="parser-words", reads=["ApiRefused"])
def query_page_string(rec: Recorder, target: Target) -> None:
    query(rec, page="1")


@case("page past the last", reads=["ok", "ok"])
def query_page_past_the_end(rec: Recorder, target: Target) -> None:
    submitted(rec)
    query(rec, page=5)


@case("no creator", reads=["ApiRefused"])
def query_creator_missing(rec: Recorder, target: Target) -> None:
    rec.post_json("/v1/job/query/", {"page": 1, "page_size": 10})


@case("a creator of 32 characters", reads=["ApiRefused"])
def query_creator_32(rec: Recorder, target: Target) -> None:
    query(rec, creator="a" * 32)


@case("a creator of 31 characters", reads=["ok"])
def query_creator_31(rec: Recorder, target: Target) -> None:
    query(rec, creator="a" * 31)


@case("a body that is not JSON", differs="parser-words", reads=["ApiRefused"])
def query_not_json(rec: Recorder, target: Target) -> None:
    rec.post_json("/v1/job/query/", None, raw=b"page=1&page_size=10&creator=alice")


@case("no Authorization header: upstream checks only that it is there", reads=["ApiRefused"])
def query_without_token(rec: Recorder, target: Target) -> None:
    rec.post_json("/v1/job/query/", {"page": 1, "page_size": 10, "creator": CREATOR}, auth=False)


@case("GET on a POST route is 404", reads=["ApiUnavailable"])
def query_wrong_method(rec: Recorder, target: Target) -> None:
    rec.request("GET", "/v1/job/query/")


@case("query without its trailing slash: 307", reads=[None])
def query_without_slash(rec: Recorder, target: Target) -> None:
    rec.post_json("/v1/job/query", {"page": 1, "page_size": 10, "creator": CREATOR})


@case("without the trailing slash and without a token: still the 307", reads=[None])
def query_without_slash_or_token(rec: Recorder, target: Target) -> None:
    body = {"page": 1, "page_size": 10, "creator": CREATOR}
    rec.post_json("/v1/job/query", body, auth=False)


@case("an unknown path is 404", reads=["ApiUnavailable"])
def unknown_path(rec: Recorder, target: Target) -> None:
    rec.post_json("/v1/job/nothing/", {"creator": CREATOR})


@case(
    "a request from a web page (browser Origin)",
    differs="host-origin",
    local=forbidden,
    reads=["ok"],
)
def query_browser_origin(rec: Recorder, target: Target) -> None:
    body = {"page": 1, "page_size": 10, "creator": CREATOR}
    rec.post_json("/v1/job/query/", body, headers={"Origin": "http://elsewhere.example"})


@case(
    "a request naming another Host",
    differs="host-origin",
    local=forbidden,
    reads=["ok"],
)
def query_foreign_host(rec: Recorder, target: Target) -> None:
    body = {"page": 1, "page_size": 10, "creator": CREATOR}
    rec.post_json("/v1/job/query/", body, headers={"Host": "rebound.example"})


# -- delete ------------------------------------------------------------------------------
@case("a deleted job leaves the list and the total", reads=["ok", "ok", "ok"])
def delete_job(rec: Recorder, target: Target) -> None:
    job_uuid = submitted(rec)
    rec.post_json("/v1/job/delete/", {"uuid": job_uuid, "creator": CREATOR})
    query(rec)


@case("an unknown uuid: Success all the same", reads=["ok"])
def delete_unknown_uuid(rec: Recorder, target: Target) -> None:
    rec.post_json("/v1/job/delete/", {"uuid": "no-such-uuid", "creator": CREATOR})


@case("no uuid: Success, nothing deleted", reads=["ok", "ok", "ok"])
def delete_without_uuid(rec: Recorder, target: Target) -> None:
    submitted(rec)
    rec.post_json("/v1/job/delete/", {"creator": CREATOR})
    query(rec)


@case("another creator's delete: Success, the job stays", reads=["ok", "ok", "ok"])
def delete_other_creator(rec: Recorder, target: Target) -> None:
    job_uuid = submitted(rec)
    rec.post_json("/v1/job/delete/", {"uuid": job_uuid, "creator": OTHER})
    query(rec)


@case("delete without a creator", reads=["ApiRefused"])
def delete_creator_missing(rec: Recorder, target: Target) -> None:
    rec.post_json("/v1/job/delete/", {"uuid": "no-such-uuid"})


@case("no Authorization header: upstream checks only that it is there", reads=["ApiRefused"])
def delete_without_token(rec: Recorder, target: Target) -> None:
    rec.post_json("/v1/job/delete/", {"uuid": "no-such-uuid", "creator": CREATOR}, auth=False)


@case("a deleted job's place is freed for the limit", reads=["ok"] * 5)
def delete_frees_a_place(rec: Recorder, target: Target) -> None:
    uuids = [submitted(rec) for _ in range(3)]
    rec.post_json("/v1/job/delete/", {"uuid": uuids[0], "creator": CREATOR})
    rec.submit(ARCHIVE, creator=CREATOR)


# -- output download ---------------------------------------------------------------------
@case(
    "a signed URL and out-<id>-<notebook>; the URL answers 404 until the output is put",
    differs="signed-url-form",
    reads=["ok", "ok", None, None],
)
def output_download(rec: Recorder, target: Target) -> None:
    job_uuid = submitted(rec)
    reply = rec.post_json("/v1/job/output/download/", {"id": 1, "creator": CREATOR}).json()
    rec.get_url(reply["signed_url"], what="output before it is put")
    target.advance(job_uuid, 5)
    target.put_output(job_uuid, OUTPUT)
    fetched = rec.get_url(reply["signed_url"], what="output once put")
    assert fetched.content == OUTPUT


@case(
    "the output of a job whose notebook name has a folder",
    differs="signed-url-form",
    reads=["ok", "ok"],
)
def output_download_folder_name(rec: Recorder, target: Target) -> None:
    rec.submit(ARCHIVE, creator=CREATOR, filename="sub/nb.ipynb")
    rec.post_json("/v1/job/output/download/", {"id": 1, "creator": CREATOR})


@case("an unknown id", reads=["NotFound"])
def output_unknown_id(rec: Recorder, target: Target) -> None:
    rec.post_json("/v1/job/output/download/", {"id": 7, "creator": CREATOR})


@case("id 0", reads=["ApiRefused"])
def output_id_0(rec: Recorder, target: Target) -> None:
    rec.post_json("/v1/job/output/download/", {"id": 0, "creator": CREATOR})


@case("id left out", reads=["ApiRefused"])
def output_id_missing(rec: Recorder, target: Target) -> None:
    rec.post_json("/v1/job/output/download/", {"creator": CREATOR})


@case("another creator's job", reads=["ok", "NotFound"])
def output_other_creator(rec: Recorder, target: Target) -> None:
    submitted(rec)
    rec.post_json("/v1/job/output/download/", {"id": 1, "creator": OTHER})


@case("a deleted job", reads=["ok", "ok", "NotFound"])
def output_deleted_job(rec: Recorder, target: Target) -> None:
    job_uuid = submitted(rec)
    rec.post_json("/v1/job/delete/", {"uuid": job_uuid, "creator": CREATOR})
    rec.post_json("/v1/job/output/download/", {"id": 1, "creator": CREATOR})


@case("no Authorization header: upstream checks only that it is there", reads=["ApiRefused"])
def output_without_token(rec: Recorder, target: Target) -> None:
    rec.post_json("/v1/job/output/download/", {"id": 1, "creator": CREATOR}, auth=False)


# -- attestation -------------------------------------------------------------------------
@case(
    "a signed URL of the token; 404 until the token is put",
    differs="signed-url-form",
    reads=["ok", "ok", None, None],
)
def attestation(rec: Recorder, target: Target) -> None:
    job_uuid = submitted(rec)
    reply = rec.post_json("/v1/job/attestation/", {"id": 1, "creator": CREATOR}).json()
    rec.get_url(reply["signed_url"], what="token before it is put")
    target.advance(job_uuid, 5)
    target.put_token(job_uuid, TOKEN_TEXT)
    fetched = rec.get_url(reply["signed_url"], what="token once put")
    assert fetched.text == TOKEN_TEXT


@case(
    "no Authorization header: upstream's attestation route takes none",
    differs="api-token",
    local=refused_with_token_words(1),
    reads=["ok", "ok"],
)
def attestation_without_token(rec: Recorder, target: Target) -> None:
    submitted(rec)
    rec.post_json("/v1/job/attestation/", {"id": 1, "creator": CREATOR}, auth=False)


@case("an unknown id", reads=["NotFound"])
def attestation_unknown_id(rec: Recorder, target: Target) -> None:
    rec.post_json("/v1/job/attestation/", {"id": 7, "creator": CREATOR})


@case("id 0", reads=["ApiRefused"])
def attestation_id_0(rec: Recorder, target: Target) -> None:
    rec.post_json("/v1/job/attestation/", {"id": 0, "creator": CREATOR})


@case("another creator's job", reads=["ok", "NotFound"])
def attestation_other_creator(rec: Recorder, target: Target) -> None:
    submitted(rec)
    rec.post_json("/v1/job/attestation/", {"id": 1, "creator": OTHER})


@case(
    "an empty Authorization header (what the extension sends with no USER_TOKEN)",
    differs="api-token",
    local=refused_with_token_words(0),
    reads=["ok"],
)
def query_empty_token(rec: Recorder, target: Target) -> None:
    body = {"page": 1, "page_size": 10, "creator": CREATOR}
    rec.post_json("/v1/job/query/", body, headers={"Authorization": ""})


@case("creator as a number", differs="parser-words", reads=["ApiRefused"])
def query_creator_number(rec: Recorder, target: Target) -> None:
    rec.post_json("/v1/job/query/", {"page": 1, "page_size": 10, "creator": 7})


@case("page 0 and no creator: the page is named first", reads=["ApiRefused"])
def query_two_invalid_fields(rec: Recorder, target: Target) -> None:
    rec.post_json("/v1/job/query/", {"page": 0, "page_size": 10})


@case("id as a string", differs="parser-words", reads=["ApiRefused"])
def output_id_string(rec: Recorder, target: Target) -> None:
    rec.post_json("/v1/job/output/download/", {"id": "1", "creator": CREATOR})


@case("an empty body", reads=["ApiRefused"])
def query_empty_body(rec: Recorder, target: Target) -> None:
    rec.post_json("/v1/job/query/", None, raw=b"")


@case("a body that is a JSON list", differs="parser-words", reads=["ApiRefused"])
def query_body_a_list(rec: Recorder, target: Target) -> None:
    rec.post_json("/v1/job/query/", [1, 2])


@case("an env item without a value, and unknown fields", reads=["ok"])
def submit_env_without_value(rec: Recorder, target: Target) -> None:
    rec.submit(ARCHIVE, creator=CREATOR, envs=json.dumps([{"key": "A", "other": 1}]))


@case("an env value that is a number", differs="parser-words", reads=["ApiRefused"])
def submit_env_value_number(rec: Recorder, target: Target) -> None:
    rec.submit(ARCHIVE, creator=CREATOR, envs=json.dumps([{"key": "A", "value": 3}]))


@case("envs that are one object, not a list: one variable", reads=["ok"])
def submit_envs_object(rec: Recorder, target: Target) -> None:
    rec.submit(ARCHIVE, creator=CREATOR, envs=json.dumps({"key": "A", "value": "v"}))


@case("an empty gzip (a tar of nothing) is accepted", reads=["ok"])
def submit_empty_gzip(rec: Recorder, target: Target) -> None:
    rec.submit(gzip.compress(b""), creator=CREATOR, what="empty gzip")


@case("a cut-off archive", reads=["ApiRefused", "ok"])
def submit_truncated_archive(rec: Recorder, target: Target) -> None:
    big = workspace_archive(CREATOR, {"nb.ipynb": NOTEBOOK, "data.bin": bytes(range(256)) * 64})
    rec.submit(big[: len(big) // 2], creator=CREATOR, what="first half of an archive")
    query(rec)


@case(
    "a job limit refusal comes before the archive is read", reads=["ok"] * 3 + ["JobLimitReached"]
)
def submit_limit_before_archive(rec: Recorder, target: Target) -> None:
    for _ in range(3):
        rec.submit(ARCHIVE, creator=CREATOR)
    rec.submit(gzip.compress(b"not a tar" * 100), creator=CREATOR, what="gzip text")


@case("envs null: one variable with an empty name", reads=["ok"])
def submit_envs_null(rec: Recorder, target: Target) -> None:
    rec.submit(ARCHIVE, creator=CREATOR, envs="null")


@case("an envs item that is null: the handler panics (HTTP 500)", reads=["ApiUnavailable"])
def submit_env_null_item(rec: Recorder, target: Target) -> None:
    rec.submit(ARCHIVE, creator=CREATOR, envs="[null]")


@case("an empty envs field is not JSON", differs="parser-words", reads=["ApiRefused"])
def submit_envs_empty_field(rec: Recorder, target: Target) -> None:
    rec.submit(ARCHIVE, creator=CREATOR, envs="")


@case(
    "an Authorization header that is not the local backend's token",
    differs="api-token",
    local=refused_with_token_words(0),
    reads=["ok"],
)
def query_wrong_token(rec: Recorder, target: Target) -> None:
    body = {"page": 1, "page_size": 10, "creator": CREATOR}
    rec.post_json("/v1/job/query/", body, headers={"Authorization": "not-the-token"})
