"""Configuration: explicit config beats the environment, which beats the default; an
unconfigured API leaves the server running and the routes answering 503."""

from __future__ import annotations

import hashlib
import logging
import re

import pytest
from traitlets.config import Config

from jupyterlab_manatee.config import (
    ManateeConfig,
    creator_problem,
    creator_warning,
    normalise_api_url,
    safe_creator,
)
from tests.conftest import call

NOT_CONFIGURED = (
    "ManaTEE API is not configured: set DATA_CLEAN_ROOM_HOST or c.ManateeConfig.api_url"
)


def test_api_url_defaults_to_the_environment_with_http_added(monkeypatch):
    monkeypatch.setenv("DATA_CLEAN_ROOM_HOST", "manatee.ns.svc.cluster.local")
    assert ManateeConfig().api_base_url == "http://manatee.ns.svc.cluster.local"


def test_explicit_config_beats_the_environment(monkeypatch):
    monkeypatch.setenv("DATA_CLEAN_ROOM_HOST", "from-env:8080")
    monkeypatch.setenv("USER_TOKEN", "env-token")
    config = Config({"ManateeConfig": {"api_url": "https://explicit/", "user_token": "cfg"}})
    settings = ManateeConfig(config=config)
    assert settings.api_base_url == "https://explicit"
    assert settings.user_token == "cfg"


def test_user_token_and_creator_default_to_the_environment(monkeypatch):
    monkeypatch.setenv("USER_TOKEN", "env-token")
    monkeypatch.setenv("MANATEE_CREATOR", "bob")
    settings = ManateeConfig()
    assert (settings.user_token, settings.creator) == ("env-token", "bob")


def test_every_setting_has_help():
    for name, trait in ManateeConfig.class_traits(config=True).items():
        assert trait.help, name


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "not configured"),
        ("ftp://host", "not a valid http(s) URL"),
        ("http://", "not a valid http(s) URL"),
        ("http://host:notaport", "invalid port"),
    ],
)
def test_unusable_api_urls_are_explained(raw, problem):
    assert problem in (normalise_api_url(raw)[1] or "")


def test_api_url_keeps_a_path_prefix_without_trailing_slash():
    assert normalise_api_url("http://h:1/api/")[0] == "http://h:1/api"


@pytest.mark.parametrize(
    ("name", "ok"),
    [("alice", True), ("a" * 31, True), ("a" * 32, False), ("", False), ("a..b", False)],
)
def test_creator_follows_the_api_rules(name, ok):
    assert (creator_problem(name) is None) is ok


class TestUnconfigured:
    @pytest.fixture
    def manatee_config(self, manatee_config, monkeypatch):
        monkeypatch.delenv("DATA_CLEAN_ROOM_HOST", raising=False)
        return {k: v for k, v in manatee_config.items() if k != "api_url"}

    @pytest.fixture
    def backend(self):
        return None

    @pytest.fixture
    def api_url(self):
        return ""

    @pytest.mark.parametrize(
        ("method", "route", "body"),
        [
            ("GET", "jobs", None),
            ("POST", "jobs", {"path": "nb.ipynb", "filename": "nb.ipynb"}),
            ("POST", "output", {"id": 1}),
            ("GET", "attestation?id=1", None),
            ("DELETE", "jobs/abc", None),
        ],
    )
    async def test_routes_answer_503_saying_what_to_set(self, jp_fetch, method, route, body):
        path, _, query = route.partition("?")
        params = dict([query.split("=")]) if query else {}
        status, reply = await call(jp_fetch, *path.split("/"), method=method, body=body, **params)
        assert status == 503
        assert reply["message"] == NOT_CONFIGURED

    async def test_config_route_reports_it_for_the_banner(self, jp_fetch):
        status, reply = await call(jp_fetch, "config")
        assert status == 200
        assert reply["configured"] is False and reply["problem"] == NOT_CONFIGURED
        assert reply["creator"] == "alice"

    async def test_server_starts_and_warns_once(self, jp_serverapp, jp_fetch):
        records: list[logging.LogRecord] = []
        handler = logging.Handler()
        handler.emit = records.append
        jp_serverapp.log.addHandler(handler)
        try:
            from jupyterlab_manatee.extension import ManateeExtension

            ManateeExtension._load_jupyter_server_extension(jp_serverapp)
        finally:
            jp_serverapp.log.removeHandler(handler)
        warnings = [r for r in records if "ManaTEE API is not configured" in r.getMessage()]
        assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


class TestStandaloneUserName:
    """A standalone server's anonymous user has a random 32-hex-character name."""

    @pytest.fixture
    def manatee_config(self, manatee_config, monkeypatch):
        monkeypatch.delenv("MANATEE_CREATOR", raising=False)
        return {**manatee_config, "creator": None}

    async def test_random_user_name_is_refused_with_the_setting_to_use(self, jp_fetch):
        status, reply = await call(jp_fetch, "jobs")
        assert status == 403
        assert "c.ManateeConfig.creator" in reply["message"]

    async def test_config_route_shows_the_creator_problem(self, jp_fetch):
        status, reply = await call(jp_fetch, "config")
        assert status == 200 and reply["creator"] is None
        assert "31" in reply["creator_problem"]


@pytest.mark.parametrize(
    "name",
    [
        "alice",
        "Alice",
        "carol@example.com",
        "x" * 40,
        "Dr. Ünïcode Name",
        "---",
        "a" * 26,
        "1alice",
        "-bob",
        "9" * 40,
    ],
)
def test_safe_mapping_gives_valid_safe_creators(name):
    mapped = safe_creator(name)
    assert creator_problem(mapped) is None
    assert creator_warning(mapped) is None


@pytest.mark.parametrize("name", ["1alice", "-bob", "9" * 40, "_x", "alice"])
def test_safe_mapping_starts_with_a_lowercase_letter_as_gce_vm_names_must(name):
    assert re.fullmatch(r"[a-z][a-z0-9-]{0,25}", safe_creator(name))


def test_safe_mapping_prefixes_a_name_starting_with_a_digit():
    assert safe_creator("1alice") == "u1alice-" + hashlib.sha256(b"1alice").hexdigest()[:6]


def test_a_creator_starting_with_a_digit_gets_the_warning():
    assert creator_warning("1alice") is not None


def test_safe_mapping_keeps_safe_names_and_separates_the_rest():
    assert safe_creator("alice") == "alice"
    assert safe_creator("Alice") != safe_creator("alice")
    assert safe_creator("x" * 40) != safe_creator("x" * 41)
