"""Closed by default: the API token on every job route, the served Host names, no foreign
browser Origin; and bad input answered in the API's error shape, never a 500."""

from __future__ import annotations

import json
import socket
import string

import pytest
import requests
from lb_support import CREATOR, QUICK_FAIL_ARCHIVE, TERMINAL, TOKEN, Api

from jupyterlab_manatee.errors import ApiRefused
from jupyterlab_manatee.local_backend.access import (
    AccessPolicy,
    is_loopback,
    load_or_create_token,
    save_token,
)
from jupyterlab_manatee.remote.api_client import ManateeApiClient

QUERY = {"page": 1, "page_size": 10, "creator": CREATOR}
#: Upstream's words for a missing header (the submit route has its own; see test_contract).
NO_TOKEN = {
    "code": 10001,
    "msg": "'access_token' field is a 'required' parameter, but the request body does not "
    "have this parameter 'access_token'",
}
WRONG_TOKEN = {"code": 10001, "msg": "the Authorization header is not this backend's API token"}
SUBMIT_NO_TOKEN = {
    "code": 10001,
    "msg": "'Authorization' field is a 'required' parameter, but the request does not have "
    "this parameter",
}
FOREIGN_ORIGIN = {"code": 10001, "msg": "requests from another web origin are refused"}
JOB_ROUTES = {
    "query": QUERY,
    "delete": {"uuid": "x", "creator": CREATOR},
    "output/download": {"id": 1, "creator": CREATOR},
    "attestation": {"id": 1, "creator": CREATOR},
}


def post(url: str, route: str, body: object, headers: dict[str, str]) -> requests.Response:
    return requests.post(f"{url}/v1/job/{route}/", json=body, headers=headers, timeout=10)


# -- the token ---------------------------------------------------------------------------
@pytest.mark.parametrize("route", sorted(JOB_ROUTES))
def test_a_job_route_without_the_token_is_refused(local_backend, route):
    response = post(local_backend.url, route, JOB_ROUTES[route], {})
    assert (response.status_code, response.json()) == (200, NO_TOKEN)


@pytest.mark.parametrize("route", sorted(JOB_ROUTES))
def test_a_job_route_with_a_wrong_token_is_refused(local_backend, route):
    response = post(local_backend.url, route, JOB_ROUTES[route], {"Authorization": "guess"})
    assert (response.status_code, response.json()) == (200, WRONG_TOKEN)


def test_an_empty_authorization_header_is_refused(local_backend):
    response = post(local_backend.url, "query", QUERY, {"Authorization": ""})
    assert (response.status_code, response.json()) == (200, WRONG_TOKEN)


def test_a_bearer_prefixed_token_is_refused_as_the_api_takes_it_raw(local_backend):
    response = post(local_backend.url, "query", QUERY, {"Authorization": f"Bearer {TOKEN}"})
    assert response.json() == WRONG_TOKEN


def test_a_prefix_of_the_token_is_refused(local_backend):
    response = post(local_backend.url, "query", QUERY, {"Authorization": TOKEN[:-1]})
    assert (response.status_code, response.json()) == (200, WRONG_TOKEN)


def test_the_token_with_more_appended_is_refused(local_backend):
    response = post(local_backend.url, "query", QUERY, {"Authorization": TOKEN + "x"})
    assert (response.status_code, response.json()) == (200, WRONG_TOKEN)


def test_a_backend_given_an_empty_token_does_not_start(start_backend):
    with pytest.raises(ValueError) as refused:
        start_backend(token="")
    assert str(refused.value) == "the API token must be non-empty, without surrounding spaces"


def test_a_submit_without_the_token_is_refused_and_creates_no_job(api):
    assert api.submit(QUICK_FAIL_ARCHIVE, auth=False) == SUBMIT_NO_TOKEN
    assert api.query()["total"] == 0


def test_the_redirect_comes_before_the_token_check_as_upstreams(local_backend):
    """The 307 says nothing but where the route is; the slash route checks the token."""
    response = requests.post(
        f"{local_backend.url}/v1/job/query", json=QUERY, allow_redirects=False, timeout=10
    )
    assert (response.status_code, response.headers["Location"]) == (307, "/v1/job/query/")
    followed = requests.post(f"{local_backend.url}/v1/job/query/", json=QUERY, timeout=10)
    assert (followed.status_code, followed.json()) == (200, NO_TOKEN)


def test_the_token_matches_what_the_backend_reports(local_backend):
    assert local_backend.token == TOKEN
    assert (local_backend.data_dir / "api-token").read_text() == TOKEN


def test_a_backend_without_a_given_token_makes_one_and_requires_it(start_backend):
    backend = start_backend(token=None)
    made = (backend.data_dir / "api-token").read_text()
    assert (backend.data_dir / "api-token").stat().st_mode & 0o777 == 0o600
    assert made == backend.token and made != TOKEN
    assert post(backend.url, "query", QUERY, {"Authorization": TOKEN}).json() == WRONG_TOKEN
    assert post(backend.url, "query", QUERY, {"Authorization": made}).json()["code"] == 0


@pytest.mark.parametrize(
    "path", ["/health", "/.well-known/openid-configuration", "/.well-known/jwks.json"]
)
def test_the_public_routes_answer_without_a_token(local_backend, path):
    response = requests.get(f"{local_backend.url}{path}", timeout=10)
    assert response.status_code == 200


def test_a_signed_url_is_served_without_the_api_token(api):
    job_uuid = api.submit_ok(QUICK_FAIL_ARCHIVE)
    job = api.wait(job_uuid, TERMINAL)
    signed = api.download(job["id"])["signed_url"]
    # the job failed in status 2, so the object does not exist: 404, not a token refusal
    assert requests.get(signed, timeout=10).status_code == 404


# -- Host and Origin ---------------------------------------------------------------------
def test_a_foreign_host_is_refused_with_403(local_backend):
    port = local_backend.url.rsplit(":", 1)[1]
    response = post(
        local_backend.url, "query", QUERY, {"Authorization": TOKEN, "Host": "evil.example"}
    )
    assert response.status_code == 403
    assert response.json() == {
        "code": 10001,
        "msg": "the Host header does not name this backend (allowed: "
        f"127.0.0.1:{port}, [::1]:{port}, localhost:{port}; add names with --allowed-host)",
    }


def test_a_foreign_host_is_refused_on_the_public_routes_too(local_backend):
    response = requests.get(
        f"{local_backend.url}/health", headers={"Host": "rebound.example:80"}, timeout=10
    )
    assert (response.status_code, response.json()["code"]) == (403, 10001)


def test_a_foreign_host_is_refused_on_submit_before_the_body_is_stored(api, local_backend):
    api.headers = {"Authorization": TOKEN, "Host": "evil.example"}
    response = requests.post(
        f"{api.base_url}/v1/job/submit/",
        files={"file": ("workspace.tar.gz", QUICK_FAIL_ARCHIVE, "application/gzip")},
        data={"creator": CREATOR, "filename": "nb.ipynb", "envs": "[]"},
        headers=api.headers,
        timeout=30,
    )
    assert response.status_code == 403
    assert list((local_backend.data_dir / "uploads").iterdir()) == []
    assert Api(api.base_url).query()["total"] == 0


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1"])
def test_the_loopback_names_with_the_port_are_served(local_backend, name):
    port = local_backend.url.rsplit(":", 1)[1]
    headers = {"Authorization": TOKEN, "Host": f"{name}:{port}"}
    assert post(local_backend.url, "query", QUERY, headers).json()["code"] == 0


def test_a_request_without_a_host_header_is_refused_with_403(local_backend):
    """HTTP/1.0 lets a client leave Host out; such a request names no backend at all."""
    port = int(local_backend.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"GET /health HTTP/1.0\r\nAuthorization: {TOKEN}\r\n\r\n".encode("ascii"))
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    status_line, _, rest = reply.partition(b"\r\n")
    assert status_line.split(b" ", 1)[1] == b"403 Forbidden"
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["code"] == 10001


def test_a_loopback_name_with_another_port_is_refused(local_backend):
    headers = {"Authorization": TOKEN, "Host": "localhost:1"}
    assert post(local_backend.url, "query", QUERY, headers).status_code == 403


def test_an_allowed_host_name_is_served(start_backend):
    backend = start_backend(allowed_hosts=["manatee.internal"])
    port = backend.url.rsplit(":", 1)[1]
    headers = {"Authorization": TOKEN, "Host": f"manatee.internal:{port}"}
    assert post(backend.url, "query", QUERY, headers).json()["code"] == 0


def test_a_foreign_origin_is_refused_with_403(local_backend):
    headers = {"Authorization": TOKEN, "Origin": "https://evil.example"}
    response = post(local_backend.url, "query", QUERY, headers)
    assert (response.status_code, response.json()) == (403, FOREIGN_ORIGIN)


def test_a_null_origin_is_refused(local_backend):
    headers = {"Authorization": TOKEN, "Origin": "null"}
    assert post(local_backend.url, "query", QUERY, headers).json() == FOREIGN_ORIGIN


def test_a_loopback_origin_on_another_port_is_refused(local_backend):
    """Another local web app (another port of this machine) is another origin."""
    headers = {"Authorization": TOKEN, "Origin": "http://127.0.0.1:1"}
    response = post(local_backend.url, "query", QUERY, headers)
    assert (response.status_code, response.json()) == (403, FOREIGN_ORIGIN)


def test_an_origin_of_another_scheme_naming_this_backend_is_refused(local_backend):
    port = local_backend.url.rsplit(":", 1)[1]
    headers = {"Authorization": TOKEN, "Origin": f"ftp://127.0.0.1:{port}"}
    assert post(local_backend.url, "query", QUERY, headers).json() == FOREIGN_ORIGIN


def test_the_https_origin_of_a_served_name_is_served(local_backend):
    """A TLS proxy in front of the backend: the page's origin is https, the name is ours."""
    port = local_backend.url.rsplit(":", 1)[1]
    headers = {"Authorization": TOKEN, "Origin": f"https://127.0.0.1:{port}"}
    assert post(local_backend.url, "query", QUERY, headers).json()["code"] == 0


def test_the_backends_own_origin_is_served(local_backend):
    headers = {"Authorization": TOKEN, "Origin": local_backend.url}
    assert post(local_backend.url, "query", QUERY, headers).json()["code"] == 0


# -- the policy's parts, one by one -------------------------------------------------------
LOOPBACK_8888 = {"127.0.0.1:8888", "localhost:8888", "[::1]:8888"}


def test_a_new_token_is_43_url_safe_characters_in_a_file_of_mode_0600(tmp_path):
    token = load_or_create_token(tmp_path / "api-token")
    assert len(token) == 43  # 32 random bytes, URL-safe base64 without padding
    assert set(token) <= set(string.ascii_letters + string.digits + "-_")
    assert (tmp_path / "api-token").read_text() == token
    assert (tmp_path / "api-token").stat().st_mode & 0o777 == 0o600


def test_a_kept_token_is_read_back_and_its_file_narrowed_to_0600(tmp_path):
    path = tmp_path / "api-token"
    path.write_text("kept-token\n")
    path.chmod(0o644)
    assert load_or_create_token(path) == "kept-token"
    assert path.stat().st_mode & 0o777 == 0o600


def test_an_empty_token_file_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "api-token"
    path.write_text(" \n")
    with pytest.raises(ValueError) as refused:
        load_or_create_token(path)
    assert str(refused.value) == (
        f"the API token file {path} is empty; delete it to make a new one"
    )


def test_a_given_token_is_saved_as_is_with_mode_0600(tmp_path):
    save_token(tmp_path / "api-token", "given-tökén")
    assert (tmp_path / "api-token").read_bytes() == "given-tökén".encode()
    assert (tmp_path / "api-token").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.0.2.10", False),
        ("manatee.example", False),
    ],
)
def test_only_loopback_bind_addresses_are_loopback(host, expected):
    assert is_loopback(host) is expected


def test_a_policy_without_a_token_cannot_be_made():
    with pytest.raises(ValueError) as refused:
        AccessPolicy("", 8888, [])
    assert str(refused.value) == "the API token must not be empty"


def test_names_are_served_lowercased_on_the_backends_port_ipv6_in_brackets():
    policy = AccessPolicy(TOKEN, 8888, ["Manatee.Example", "fe80::1", "[FE80::A]"])
    assert policy.allowed_hosts == LOOPBACK_8888 | {
        "manatee.example:8888",
        "[fe80::1]:8888",
        "[fe80::a]:8888",
    }


def test_names_with_a_port_are_taken_as_given_and_blank_names_skipped():
    policy = AccessPolicy(TOKEN, 8888, ["Proxy.Example:8443", "[::1]:9000", " ", "late.example"])
    assert policy.allowed_hosts == LOOPBACK_8888 | {
        "proxy.example:8443",
        "[::1]:9000",
        "late.example:8888",
    }


def test_an_ipv6_name_on_its_schemes_default_port_is_also_served_bare():
    policy = AccessPolicy(TOKEN, 8888, ["[FD00::7]:443"])
    assert policy.allowed_hosts == LOOPBACK_8888 | {"[fd00::7]:443", "[fd00::7]"}


def test_a_backend_on_port_80_also_serves_its_names_without_a_port():
    policy = AccessPolicy(TOKEN, 80, ["manatee.example"])
    assert policy.allowed_hosts == {
        "127.0.0.1:80",
        "localhost:80",
        "[::1]:80",
        "manatee.example:80",
        "127.0.0.1",
        "localhost",
        "[::1]",
        "manatee.example",
    }


@pytest.mark.parametrize(
    ("bind", "public_url", "extra", "expected"),
    [
        ("127.0.0.1", None, [], ["127.0.0.1"]),
        ("0.0.0.0", None, ["a.example"], ["a.example"]),
        ("::", None, [], []),
        ("", None, [], []),
        ("127.0.0.1", "https://manatee.example/", [], ["127.0.0.1", "manatee.example:443"]),
        ("127.0.0.1", "http://manatee.example", [], ["127.0.0.1", "manatee.example:80"]),
        (
            "0.0.0.0",
            "https://Manatee.Example:8443/api",
            ["b.example"],
            ["b.example", "manatee.example:8443"],
        ),
        ("::1", "http://[::1]:9000/", [], ["::1", "[::1]:9000"]),
        ("127.0.0.1", "", [], ["127.0.0.1"]),
    ],
)
def test_the_names_served_are_the_given_ones_the_bind_address_and_the_public_url(
    bind, public_url, extra, expected
):
    assert AccessPolicy.names_for(bind, public_url, extra) == expected


@pytest.mark.parametrize("public_url", ["https://manatee.example/", "http://manatee.example"])
def test_a_public_url_on_its_schemes_default_port_is_served_with_and_without_the_port(
    public_url,
):
    """Behind a proxy on https://manatee.example, browsers send ``Origin:
    https://manatee.example`` and proxies ``Host: manatee.example``: both are its own."""
    policy = AccessPolicy(TOKEN, 8888, AccessPolicy.names_for("127.0.0.1", public_url, []))
    port = "443" if public_url.startswith("https") else "80"
    scheme = public_url.partition(":")[0]
    assert policy.host_allowed("manatee.example") is True
    assert policy.host_allowed(f"manatee.example:{port}") is True
    assert policy.origin_allowed(f"{scheme}://manatee.example") is True
    assert policy.host_allowed("manatee.example:8443") is False
    assert policy.host_allowed("other.example") is False


def test_a_name_on_another_port_is_not_served_without_its_port():
    policy = AccessPolicy(TOKEN, 8888, ["proxy.example:8443"])
    assert policy.host_allowed("proxy.example") is False


def test_a_token_matches_only_itself():
    policy = AccessPolicy(TOKEN, 8888, [])
    assert policy.token_matches(TOKEN) is True
    assert policy.token_matches(None) is False
    assert policy.token_matches(TOKEN.upper()) is False


def test_an_authorization_value_with_undecodable_bytes_is_refused_not_an_error():
    """Surrogate-escaped bytes (as a server decoding with surrogateescape hands them on)
    compare as their bytes: no match, and no UnicodeEncodeError."""
    policy = AccessPolicy("\u00e9t\u00e9", 8888, [])
    assert policy.token_matches("\udcc3\udca9t\udcc3\udca9") is True
    assert policy.token_matches("\udc80") is False


# -- bad input is an error reply, never a 500 (issue 17) ---------------------------------
def test_a_non_ascii_digit_expiry_on_a_signed_url_is_refused_with_403(local_backend):
    response = requests.get(
        f"{local_backend.url}/storage/outputs/x/y",
        params={"expires": "²", "signature": "0" * 64},
        timeout=10,
    )
    assert response.status_code == 403
    assert response.text == "403 Forbidden: the URL's expiry is not a valid time"


def post_json_text(local_backend, route: str, body: str | bytes) -> requests.Response:
    """A job route called with the token and a body sent exactly as given."""
    return requests.post(
        f"{local_backend.url}{route}",
        data=body,
        headers={"Authorization": TOKEN, "Content-Type": "application/json"},
        timeout=10,
    )


def test_a_lone_surrogate_creator_is_an_error_reply(local_backend):
    body = b'{"page": 1, "page_size": 10, "creator": "\\ud800"}'
    response = post_json_text(local_backend, "/v1/job/query/", body)
    assert (response.status_code, response.json()) == (
        200,
        {"code": 10001, "msg": 'bind body failed, err="creator: invalid UTF-8"'},
    )


def test_a_lone_surrogate_uuid_on_delete_is_an_error_reply(local_backend):
    body = b'{"uuid": "\\udfff", "creator": "alice"}'
    response = post_json_text(local_backend, "/v1/job/delete/", body)
    assert response.json() == {
        "code": 10001,
        "msg": 'bind body failed, err="uuid: invalid UTF-8"',
    }


def test_a_deeply_nested_json_body_is_an_error_reply(local_backend):
    body = "[" * 100_000 + "]" * 100_000
    response = post_json_text(local_backend, "/v1/job/query/", body)
    assert (response.status_code, response.json()) == (
        200,
        {"code": 10001, "msg": 'bind body failed, err="nesting too deep"'},
    )


def test_deeply_nested_envs_on_submit_are_an_error_reply(api):
    reply = api.submit(QUICK_FAIL_ARCHIVE, envs="[" * 30_000 + "]" * 30_000)
    assert reply["code"] == 10001
    assert reply["msg"].startswith("using '[[[")
    assert reply["msg"].endswith(
        "]]]' to unmarshal field 'Envs: []*job.Env' failed, \"nesting too deep\""
    )
    assert api.query()["total"] == 0


async def test_a_streamed_submit_with_a_wrong_token_reads_the_error_reply(local_backend, tmp_path):
    """The extension's client streams the archive: the refusal waits for the body (drained,
    never stored) so the client gets the API's error, not a closed connection."""
    archive = tmp_path / "workspace.tar.gz"
    archive.write_bytes(QUICK_FAIL_ARCHIVE + bytes(2 * 1024 * 1024))
    client = ManateeApiClient(local_backend.url, "guess")
    with pytest.raises(ApiRefused) as refused:
        await client.submit(archive, creator=CREATOR, filename="nb.ipynb", envs=[])
    assert str(refused.value) == (
        "The ManaTEE API refused the request: "
        "the Authorization header is not this backend's API token"
    )
    assert list((local_backend.data_dir / "uploads").iterdir()) == []
