"""A reply's status line and headers as tornado's client hands them to ``header_callback``.

Fetches that cap a body before it arrives (API replies, key documents) need the
``Content-Length`` of the final reply, after any 1xx; the lines are parsed by tornado's own
parsers, never by hand.
"""

from __future__ import annotations

from tornado.httputil import HTTPHeaders, parse_response_start_line


class ReplyHead:
    """A reply's status and headers, parsed by tornado from the lines it hands a fetch's
    ``header_callback``: a start line, one line per header, then a blank line; a 1xx reply
    comes first with its own such block, and the final reply's start line begins anew."""

    def __init__(self) -> None:
        self.code: int | None = None
        self.headers = HTTPHeaders()
        self._complete = True  # the next line is a start line

    def feed(self, line: str) -> bool:
        """Take one line; True when it ended a reply's headers."""
        if self._complete:
            self.code = parse_response_start_line(line.rstrip("\r\n")).code
            self.headers = HTTPHeaders()
            self._complete = False
            return False
        if line.rstrip("\r\n"):
            self.headers.parse_line(line)
            return False
        self._complete = True
        return True
