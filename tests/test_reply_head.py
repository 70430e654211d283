"""A reply's head as tornado hands it to ``header_callback`` line by line
(jupyterlab_manatee.remote.reply_head): the final reply's status and headers, never a 1xx's."""

from __future__ import annotations

from jupyterlab_manatee.remote.reply_head import ReplyHead


def fed(head: ReplyHead, *lines: str) -> list[bool]:
    return [head.feed(line) for line in lines]


def test_a_head_not_yet_fed_has_no_status_and_no_headers() -> None:
    head = ReplyHead()
    assert head.code is None
    assert list(head.headers.get_all()) == []


def test_the_status_and_headers_are_read_and_the_blank_line_ends_them() -> None:
    head = ReplyHead()
    ends = fed(head, "HTTP/1.1 404 Not Found\r\n", "Content-Length: 5\r\n", "\r\n")
    assert ends == [False, False, True]
    assert head.code == 404
    assert list(head.headers.get_all()) == [("Content-Length", "5")]


def test_after_a_1xx_reply_only_the_final_replys_status_and_headers_count() -> None:
    head = ReplyHead()
    ends = fed(
        head,
        "HTTP/1.1 103 Early Hints\r\n",
        "Link: </style.css>; rel=preload\r\n",
        "\r\n",
        "HTTP/1.1 200 OK\r\n",
        "Content-Length: 7\r\n",
        "\r\n",
    )
    assert ends == [False, False, True, False, False, True]
    assert head.code == 200
    assert list(head.headers.get_all()) == [("Content-Length", "7")]


def test_a_status_line_without_a_reason_is_read() -> None:
    """tornado writes the start line back as "version code reason": an empty reason leaves
    a trailing space, which must stay for tornado's own parser."""
    head = ReplyHead()
    fed(head, "HTTP/1.1 204 \r\n", "\r\n")
    assert head.code == 204
