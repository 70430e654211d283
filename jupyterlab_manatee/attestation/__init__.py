"""Attestation tokens: reading them (:func:`describe_token`) and verifying them against an
output file (:func:`verify_token`), shared by the server's routes and the command line
``python -m jupyterlab_manatee.attestation verify OUTPUT TOKEN``."""

from __future__ import annotations

from .keys import KeyStore, KeyUnavailable, UnknownKey
from .record import RECORD_SUFFIX, make_record, read_record, record_name, write_new_record
from .token import MOCK_TOKEN_RE, ParsedToken, describe_token, parse_token
from .verify import (
    GOOGLE_ISSUER,
    LOCAL_RUN,
    MOCK_BACKEND,
    NOT_VERIFIED,
    VERIFIED,
    VERIFIED_EXPIRED,
    Check,
    JobFacts,
    Policy,
    Verification,
    evaluate,
    file_md5,
    verify_token,
)

__all__ = [
    "GOOGLE_ISSUER",
    "LOCAL_RUN",
    "MOCK_BACKEND",
    "MOCK_TOKEN_RE",
    "NOT_VERIFIED",
    "RECORD_SUFFIX",
    "VERIFIED",
    "VERIFIED_EXPIRED",
    "Check",
    "JobFacts",
    "KeyStore",
    "KeyUnavailable",
    "ParsedToken",
    "Policy",
    "UnknownKey",
    "Verification",
    "describe_token",
    "evaluate",
    "file_md5",
    "make_record",
    "parse_token",
    "read_record",
    "record_name",
    "verify_token",
    "write_new_record",
]
