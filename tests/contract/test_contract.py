"""Each contract case, run against the target, gives the real API's recorded replies.

Against the local backend, a case that meets a deliberate difference (``Case.differs``,
see `cases.DELIBERATE`) checks the local reply it names instead, and that the difference
is still there (so a marker never outlives its difference)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from cases import CASES, DELIBERATE
from contract_support import (
    RECORD,
    Exchange,
    LocalTarget,
    Recorder,
    load_recording,
    write_recording,
)


def without_status_reason(body: Any) -> Any:
    """DELIBERATE["status-reason"]: the local jobs' extra field is left out of comparisons."""
    if isinstance(body, dict) and isinstance(body.get("jobs"), list):
        body = copy.deepcopy(body)
        for job in body["jobs"]:
            if isinstance(job, dict):
                job.pop("status_reason", None)
    return body


def without_signed_url(body: Any) -> Any:
    """DELIBERATE["signed-url-form"]: only whether a signed URL is there is compared."""
    if isinstance(body, dict) and isinstance(body.get("signed_url"), str):
        body = {**body, "signed_url": "<signed-url>" if body["signed_url"] else ""}
    return body


def parser_words_cut(body: Any) -> Any:
    """DELIBERATE["parser-words"]: an error's words are compared up to the parser's own
    explanation (its first double quote, or after "with value <kind>")."""
    if isinstance(body, dict) and isinstance(body.get("msg"), str) and body.get("code"):
        msg = body["msg"]
        cut = msg.find('"')
        body = {**body, "msg": msg[:cut] if cut >= 0 else msg}
    return body


def comparable(
    exchange: Exchange, *, local: bool, masked_urls: bool, parser_words: bool = False
) -> dict[str, Any]:
    body = exchange.body
    if local:
        body = without_status_reason(body)
    if masked_urls:
        body = without_signed_url(body)
    if parser_words:
        body = parser_words_cut(body)
    return {
        "request": exchange.request,
        "status": exchange.status,
        "headers": exchange.headers,
        "body": body,
    }


def test_every_deliberate_difference_has_a_reason_and_a_case():
    used = {case.differs for case in CASES.values() if case.differs}
    assert used <= set(DELIBERATE)
    assert all(len(reason) > 40 for reason in DELIBERATE.values())


@pytest.mark.parametrize("name", sorted(CASES))
def test_case_gives_the_real_apis_replies(name, target):
    case = CASES[name]
    recorder = Recorder(target)
    case.run(recorder, target)
    exchanges = recorder.exchanges
    if RECORD:
        write_recording(name, exchanges, about=case.about)
        return
    recorded = load_recording(name)
    assert recorded is not None, f"no recording of {name}: record it from the real API"
    local = isinstance(target, LocalTarget)
    if local and case.differs in ("api-token", "host-origin"):
        assert case.local is not None
        case.local(exchanges)
        assert [e.to_json() for e in exchanges] != [e.to_json() for e in recorded], (
            f"{name} no longer differs ({case.differs}): drop the marker"
        )
        return
    masked = case.differs == "signed-url-form" or local
    words = local and case.differs == "parser-words"
    got = [comparable(e, local=local, masked_urls=masked, parser_words=words) for e in exchanges]
    want = [comparable(e, local=False, masked_urls=masked, parser_words=words) for e in recorded]
    assert got == want
