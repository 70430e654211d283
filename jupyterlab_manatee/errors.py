"""Domain errors: each carries the HTTP status the handlers answer with and a message a
person can act on. The base handler turns any of them into a JSON error reply."""

from __future__ import annotations

import reprlib
from typing import Any

from tornado.web import HTTPError

#: How much of a value from a request (or a file) an error message quotes.
MAX_QUOTED = 200
_QUOTE = reprlib.Repr()  # keyword arguments only from Python 3.12
_QUOTE.maxlevel, _QUOTE.maxstring, _QUOTE.maxother, _QUOTE.maxlong = 2, MAX_QUOTED, MAX_QUOTED, 40
_QUOTE.maxlist = _QUOTE.maxtuple = _QUOTE.maxdict = _QUOTE.maxset = 6


def quoted(value: Any) -> str:
    """``value`` as Python's ``repr`` shows it, cut in the middle to at most a few hundred
    characters: an error never echoes a whole 60 MB string (or list) back to its sender."""
    try:
        return _QUOTE.repr(value)
    except ValueError:  # an int over sys.get_int_max_str_digits() digits
        return f"<a {type(value).__name__} too large to show>"


class ManateeError(HTTPError):
    """Base class; ``status`` is the HTTP status the extension replies with.

    It is a tornado ``HTTPError`` so that tornado itself sets the status and logs it as a
    warning (no traceback); the base handler's ``write_error`` shapes the JSON body.
    """

    status: int = 500

    def __init__(self, message: str, *, status: int | None = None) -> None:
        if status is not None:
            self.status = status
        # tornado uses log_message as a %-format when it logs the error
        super().__init__(self.status, message.replace("%", "%%"))
        self.message = message

    def __str__(self) -> str:
        return self.message


class BadRequest(ManateeError):
    """The request (path, id, body) is malformed or points somewhere it may not."""

    status = 400


class Forbidden(ManateeError):
    """The logged-in user cannot act as a ManaTEE creator."""

    status = 403


class NotFound(ManateeError):
    """The job, notebook, output or token does not exist (or is not this user's)."""

    status = 404


class Conflict(ManateeError):
    """The request cannot be done in the current state (e.g. cancelling a sending upload)."""

    status = 409


class JobLimitReached(ManateeError):
    """The API refuses a new job because too many of this creator's jobs are in progress."""

    status = 409


class WorkspaceTooLarge(ManateeError):
    """The notebook's folder exceeds the configured size cap; nothing was sent."""

    status = 413


class InsufficientStorage(ManateeError):
    """The contents root has no room for a download; nothing partial is left."""

    status = 507


class ApiRefused(ManateeError):
    """The API answered ``code != 0`` for a reason that is neither a limit nor a missing job."""

    status = 400

    def __init__(self, message: str, *, api_code: int | None = None) -> None:
        super().__init__(message)
        self.api_code = api_code


class ApiUnavailable(ManateeError):
    """The API could not be reached, or answered something that is not the contract."""

    status = 502


class ApiNotConfigured(ManateeError):
    """No (valid) API URL is configured."""

    status = 503


class ApiTimeout(ManateeError):
    """The API did not answer within the configured timeout."""

    status = 504
