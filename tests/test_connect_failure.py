"""Why no connection to the API could be made, in words a user can act on
(`api_session.connect_failure`): table-driven over the errors a connect raises."""

from __future__ import annotations

import socket

import pytest

from jupyterlab_manatee.remote.api_session import connect_failure


@pytest.mark.parametrize(
    ("error", "port", "expected"),
    [
        (
            ConnectionRefusedError(111, "Connection refused"),
            8080,
            "nothing is listening at api.example:8080 (connection refused)",
        ),
        # asyncio's own words, on an OSError that is not a ConnectionRefusedError
        (
            OSError("Multiple exceptions: [Errno 111] Connect call failed ('127.0.0.1', 1)"),
            1,
            "nothing is listening at api.example:1 (connection refused)",
        ),
        (
            ConnectionRefusedError(111, "Connection refused"),
            None,
            "nothing is listening at api.example (connection refused)",
        ),
        (
            socket.gaierror(-2, "Name or service not known"),
            80,
            "the host name api.example is not known (Name or service not known)",
        ),
        (
            socket.gaierror("no strerror here"),
            80,
            "the host name api.example is not known (no strerror here)",
        ),
        (OSError(113, "No route to host"), 80, "No route to host"),
        (OSError("a text without an errno"), 80, "a text without an errno"),
        (TimeoutError(), 80, "TimeoutError"),
    ],
)
def test_a_connect_failure_is_told_in_words(error: OSError, port: int | None, expected: str):
    assert connect_failure(error, "api.example", port) == expected
