"""Upstream's request validation rules, with messages that say what is wrong.

Upstream (``app/api/idl/job.thrift``): ``creator`` 1..31 characters without ``..``;
the notebook ``filename`` ends in ``.ipynb``, is shorter than 128 characters and has no
``..``; ``page`` > 0; ``id`` > 0. Upstream's ``page_size`` rule was meant as 1..100
(it is written ``$ > 0 || $ <= 100``, which lets anything through); here it is 1..100.
Also refused here, because this backend turns names into paths: a notebook name with a
path separator (upstream's executor only sees the top of the workspace anyway).
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_CREATOR_LENGTH = 31
MAX_NOTEBOOK_NAME_LENGTH = 127
MAX_PAGE_SIZE = 100
MAX_ENVS = 256
#: Ids and page numbers are SQLite (and upstream's) signed 64-bit integers.
MAX_INT64 = 2**63 - 1
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InvalidRequest(Exception):
    """A request field breaks a rule; the message is the API's ``msg``."""


def parse_json(text: str | bytes, what: str) -> Any:
    """``json.loads``, with a nesting too deep for the parser refused, not a crash."""
    try:
        return json.loads(text)
    except RecursionError:
        raise InvalidRequest(f"{what} is nested too deeply") from None
    except ValueError as exc:
        raise InvalidRequest(f"{what} must be JSON: {exc}") from exc


def _unicode(name: str, value: str) -> str:
    """Refuse text that is not valid Unicode (a lone surrogate from a JSON escape):
    it cannot be stored, nor become a path."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(f"{name} must be valid Unicode text (no lone surrogates)") from None
    return value


def creator(value: Any) -> str:
    if value is None:
        raise InvalidRequest("creator is required")
    if not isinstance(value, str):
        raise InvalidRequest("creator must be a string")
    if not value:
        raise InvalidRequest("creator must not be empty")
    if len(value) > MAX_CREATOR_LENGTH:
        raise InvalidRequest(
            f"creator must be at most {MAX_CREATOR_LENGTH} characters long (got {len(value)})"
        )
    if ".." in value:
        raise InvalidRequest("creator must not contain '..'")
    return _unicode("creator", value)


def notebook_name(value: Any) -> str:
    if value is None:
        raise InvalidRequest("filename (the notebook's file name) is required")
    if not isinstance(value, str):
        raise InvalidRequest("filename must be a string")
    if not value.endswith(".ipynb"):
        raise InvalidRequest(f"filename must end in .ipynb (got {value!r})")
    if len(value) > MAX_NOTEBOOK_NAME_LENGTH:
        raise InvalidRequest(f"filename must be shorter than 128 characters (got {len(value)})")
    if ".." in value:
        raise InvalidRequest("filename must not contain '..'")
    if "/" in value or "\\" in value or "\0" in value:
        raise InvalidRequest(
            "filename must be the notebook's base name (no folders): "
            "the notebook sits at the top of the workspace archive"
        )
    return value


def _integer(name: str, value: Any) -> int:
    if value is None:
        raise InvalidRequest(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name} must be an integer (got {value!r})")
    if abs(value) > MAX_INT64:
        raise InvalidRequest(f"{name} must be a 64-bit integer (got {value})")
    return value


def page(value: Any) -> int:
    number = _integer("page", value)
    if number <= 0:
        raise InvalidRequest(f"page must be greater than 0 (got {number})")
    if number > MAX_INT64 // MAX_PAGE_SIZE:
        raise InvalidRequest(f"page must be at most {MAX_INT64 // MAX_PAGE_SIZE} (got {number})")
    return number


def page_size(value: Any) -> int:
    number = _integer("page_size", value)
    if not 0 < number <= MAX_PAGE_SIZE:
        raise InvalidRequest(f"page_size must be between 1 and {MAX_PAGE_SIZE} (got {number})")
    return number


def job_id(value: Any) -> int:
    number = _integer("id", value)
    if number <= 0:
        raise InvalidRequest(f"id must be greater than 0 (got {number})")
    return number


def job_uuid(value: Any) -> str:
    if value is None:
        raise InvalidRequest("uuid is required")
    if not isinstance(value, str):
        raise InvalidRequest("uuid must be a string")
    return _unicode("uuid", value)


def envs(text: str | None) -> list[dict[str, str]]:
    """The submit form's ``envs``: JSON text ``[{"key": "K", "value": "V"}, ...]``."""
    if text is None or not text.strip():
        return []
    items = parse_json(text, "envs (JSON text, a list of key/value objects)")
    if not isinstance(items, list):
        raise InvalidRequest('envs must be a JSON list like [{"key": "K", "value": "V"}]')
    if len(items) > MAX_ENVS:
        raise InvalidRequest(f"envs may hold at most {MAX_ENVS} entries (got {len(items)})")
    result: list[dict[str, str]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or set(item) - {"key", "value"}:
            raise InvalidRequest(
                f'envs[{index}] must be an object {{"key": "K", "value": "V"}} (got {item!r})'
            )
        key, value = item.get("key"), item.get("value", "")
        if not isinstance(key, str) or not _ENV_KEY.fullmatch(key):
            raise InvalidRequest(
                f"envs[{index}].key must be an environment variable name "
                f"(letters, digits, '_', not starting with a digit; got {key!r})"
            )
        if not isinstance(value, str) or "\0" in value:
            raise InvalidRequest(f"envs[{index}].value must be a string without NUL characters")
        _unicode(f"envs[{index}].value", value)
        result.append({"key": key, "value": value})
    return result
