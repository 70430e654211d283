"""Upstream's request binding and validation, with upstream's words.

Recorded from the real API (``tests/contract/recorded/``, upstream commit 942a4c9):

- JSON routes bind the body into typed fields: a value of the wrong type (a string for
  an integer, a number for a string, an integer past 64 bits) is refused as
  ``bind body failed, err=...``; a field left out, or null, is its zero value.
- Then the validation rules, field by field in upstream's order: ``page`` > 0
  (``invalid parameter: Page``), ``creator`` 1..31 characters without ``..``
  (``invalid parameter: Creator``), ``id`` > 0 (``invalid parameter: ID``).
  ``page_size`` has a rule written ``$ > 0 || $ <= 100``, which lets every value
  through: 0 lists nothing, a negative size lists everything.
- ``uuid`` of a delete is not required: a delete without one matches nothing.
- The submit form is not validated at all (upstream fills its request by hand and never
  runs the rules): any ``creator`` and ``filename``, empty ones included, make a job.
  Only ``envs`` is parsed (JSON, a list of ``{"key", "value"}`` objects; any key).

The parser's own words after ``err=`` (upstream's JSON library's) are not copied: the
contract tests compare the text up to them (deliberate difference ``parser-words``).
"""

from __future__ import annotations

import json
from typing import Any

MAX_CREATOR_LENGTH = 31
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


class InvalidRequest(Exception):
    """A request field breaks a rule; the message is the API's ``msg``."""


class HandlerPanics(Exception):
    """Input on which upstream's handler panics (its answer: HTTP 500, no body)."""


def _kind(value: Any) -> str:
    """The JSON kind of a value, in the binder's words."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _mismatch(expected: str, value: Any, where: str) -> str:
    """The binder's words for a value of the wrong type (its explanation quoted after)."""
    return f'Mismatch type {expected} with value {_kind(value)} "{where}: mismatched type"'


def parse_body(text: bytes, request_type: str) -> dict[str, Any]:
    """A JSON route's body: an object (empty when the body is empty or null).
    ``request_type`` is upstream's name for the route's request (``job.QueryJobRequest``)."""
    if not text.strip():
        return {}
    try:
        body = json.loads(text)
    except RecursionError:
        raise InvalidRequest('bind body failed, err="nesting too deep"') from None
    except ValueError as exc:
        raise InvalidRequest(f'bind body failed, err="{exc}"') from None
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidRequest(f"bind body failed, err={_mismatch(request_type, body, 'body')}")
    return body


def integer(body: dict[str, Any], name: str) -> int:
    """An int64 field: 0 when left out or null."""
    value = body.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"bind body failed, err={_mismatch('int64', value, name)}")
    if not INT64_MIN <= value <= INT64_MAX:
        raise InvalidRequest(f'bind body failed, err="{name}: the number is out of int64 range"')
    return value


def text(body: dict[str, Any], name: str) -> str:
    """A string field: "" when left out or null."""
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRequest(f"bind body failed, err={_mismatch('string', value, name)}")
    return _unicode(name, value)


def _unicode(name: str, value: str) -> str:
    """Refuse text that cannot be stored (a lone surrogate from a JSON escape)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(f'bind body failed, err="{name}: invalid UTF-8"') from None
    return value


def page(value: int) -> int:
    if value <= 0:
        raise InvalidRequest("invalid parameter: Page")
    return value


def creator(value: str) -> str:
    if not 0 < len(value.encode("utf-8")) <= MAX_CREATOR_LENGTH or ".." in value:
        raise InvalidRequest("invalid parameter: Creator")
    return value


def job_id(value: int) -> int:
    if value <= 0:
        raise InvalidRequest("invalid parameter: ID")
    return value


def page_window(page_number: int, page_size: int) -> tuple[int, int]:
    """SQL (limit, offset) as upstream's query makes them: a negative size means no
    limit; the offset is ``page_size * (page - 1)`` in 64-bit arithmetic, left out
    unless positive."""
    offset = (page_size * (page_number - 1) - INT64_MIN) % 2**64 + INT64_MIN
    return (page_size if page_size >= 0 else -1), max(offset, 0)


def envs(value: str | None) -> list[dict[str, str]]:
    """The submit form's ``envs``: JSON text ``[{"key": "K", "value": "V"}, ...]``.

    As upstream's binder: left out is none; an object is one item; ``null`` is one item
    with an empty key and value; an item's missing key or value is ""; unknown fields
    are ignored; a later item with the same key wins (the job keeps a key -> value map).
    An empty field is not JSON, and refused; a null item makes upstream's handler panic."""
    if value is None:
        return []

    def failed(detail: str) -> InvalidRequest:
        return InvalidRequest(
            f"using '{value}' to unmarshal field 'Envs: []*job.Env' failed, {detail}"
        )

    try:
        items = json.loads(value)
    except RecursionError:
        raise failed('"nesting too deep"') from None
    except ValueError as exc:
        raise failed(f'"{exc}"') from None
    if not isinstance(items, list):
        items = [{} if items is None else items]
    pairs: dict[str, str] = {}
    for item in items:
        if item is None:
            raise HandlerPanics("a null item of envs")  # upstream reads a nil pointer
        if not isinstance(item, dict):
            raise failed(_mismatch("job.Env", item, "envs"))
        pair = []
        for name in ("key", "value"):
            field = item.get(name)
            if field is not None and not isinstance(field, str):
                raise failed(_mismatch("string", field, f"envs {name}"))
            pair.append(_unicode(f"envs {name}", field or ""))
        pairs[pair[0]] = pair[1]
    return [{"key": key, "value": item} for key, item in pairs.items()]
