"""The OpenAPI document shipped in the package describes exactly the routes the extension
registers: it is valid OpenAPI 3, and the routes and methods found by introspecting the
handlers that ``setup_handlers`` adds are the ones it lists, no more, no less."""

from __future__ import annotations

import asyncio
import logging
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate
from tornado.routing import PathMatches, Router
from tornado.web import Application, RequestHandler

import jupyterlab_manatee
from jupyterlab_manatee import handlers
from jupyterlab_manatee.config import ManateeConfig
from jupyterlab_manatee.manager import ManateeManager

METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
_GROUP = re.compile(r"\((?:[^()\\]|\\.)*\)")


def load_document() -> dict[str, Any]:
    text = files(jupyterlab_manatee).joinpath("openapi.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return load_document()


def _own_methods(handler: type[RequestHandler]) -> set[str]:
    """The HTTP methods this extension's handler class implements itself (not those it
    inherits from tornado or jupyter_server)."""
    return {
        method.upper()
        for method in METHODS
        for klass in handler.__mro__
        if klass.__module__ == handlers.__name__ and method in vars(klass)
    }


def _handler_routes(handler_rules: list[Any]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for rule in handler_rules:
        if isinstance(rule.target, Router) and hasattr(rule.target, "rules"):
            found |= _handler_routes(rule.target.rules)
            continue
        target = rule.target
        if not (isinstance(target, type) and issubclass(target, handlers.ManateeHandler)):
            continue
        assert isinstance(rule.matcher, PathMatches)
        template = _GROUP.sub("{}", rule.matcher.regex.pattern.rstrip("$"))
        found |= {(template, method) for method in _own_methods(target)}
    return found


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> set[tuple[str, str]]:
    """``(path template with {} for each parameter, METHOD)`` as setup_handlers adds them
    to a tornado application at base_url ``/``."""
    app = Application(base_url="/")
    config = ManateeConfig(state_dir=str(tmp_path_factory.mktemp("state")))
    manager = ManateeManager(config, tmp_path_factory.mktemp("root"), logging.getLogger("test"))
    try:
        handlers.setup_handlers(app, manager)
    finally:
        asyncio.run(manager.close())
    return _handler_routes(app.default_router.rules)


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (re.sub(r"\{[^}]+\}", "{}", path), method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


def test_the_document_is_valid_openapi_3(document) -> None:
    assert document["openapi"].startswith("3.")
    validate(document)


def test_the_document_ships_inside_the_package() -> None:
    path = Path(jupyterlab_manatee.__file__).parent / "openapi.yaml"
    assert path.is_file()


def test_the_document_carries_the_package_version(document) -> None:
    assert document["info"]["version"] == jupyterlab_manatee.__version__


def test_introspection_finds_the_extension_routes(registered) -> None:
    """Guards the comparison below against an introspection that finds nothing."""
    assert ("/manatee/jobs", "GET") in registered
    assert ("/manatee/jobs/{}", "DELETE") in registered


def test_every_registered_route_and_method_is_documented(document, registered) -> None:
    assert registered - documented(document) == set()


def test_every_documented_route_and_method_is_registered(document, registered) -> None:
    assert documented(document) - registered == set()


def test_path_parameters_are_declared(document) -> None:
    for path, item in document["paths"].items():
        names = set(re.findall(r"\{([^}]+)\}", path))
        for method, operation in item.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (method, path)


def test_every_error_status_replies_with_the_error_schema(document) -> None:
    error = document["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"code", "msg", "message", "reason"}
    shared = document["components"]["responses"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                if "$ref" in response:
                    response = shared[response["$ref"].rsplit("/", 1)[1]]
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)


def test_every_operation_answers_unauthenticated_callers_403(document) -> None:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert "403" in operation["responses"], (method, path)
