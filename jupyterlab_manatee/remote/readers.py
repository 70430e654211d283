"""Callbacks of a tornado fetch that can stop it for a reason of ours, and a JSON reply's
body capped while it streams."""

from __future__ import annotations

from typing import NoReturn

from tornado.httputil import HTTPInputError

from ..errors import ApiUnavailable
from .reply_head import ReplyHead

MIB = 1024 * 1024
#: The largest JSON reply read from the API; a longer one is refused while it streams.
MAX_JSON_REPLY = 16 * MIB


class Reader:
    """Lets a fetch's callbacks stop it for a reason of ours.

    tornado logs any other exception raised in ``header_callback``/``streaming_callback``
    as uncaught and reports only a closed stream; an ``HTTPInputError`` closes the
    connection quietly. So the reason is kept here and raised once the fetch returns.
    """

    def __init__(self) -> None:
        self.error: BaseException | None = None

    def stop(self, error: BaseException) -> NoReturn:
        self.error = error
        raise HTTPInputError(str(error))


class CappedBody(Reader):
    """A JSON reply's body, refused as soon as it passes ``limit`` bytes: a huge or endless
    reply is never held whole in memory (tornado would read it all before any check)."""

    def __init__(self, where: str, limit: int = MAX_JSON_REPLY) -> None:
        super().__init__()
        self.where = where
        self.limit = limit
        self.body = bytearray()
        self.head = ReplyHead()

    def on_header(self, line: str) -> None:
        if not self.head.feed(line):
            return
        # a 1xx reply's headers end here too; tornado refuses one that declares a body
        for length in self.head.headers.get_list("Content-Length"):
            if length.strip().isdigit() and int(length) > self.limit:
                self.stop(self.too_large())

    def on_chunk(self, chunk: bytes) -> None:
        if len(self.body) + len(chunk) > self.limit:
            self.stop(self.too_large())
        self.body.extend(chunk)

    def too_large(self) -> ApiUnavailable:
        return ApiUnavailable(
            f"{self.where} sent a reply larger than {self.limit // MIB} MiB; stopped reading "
            "it. Is DATA_CLEAN_ROOM_HOST the ManaTEE API?"
        )
