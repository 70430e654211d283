"""The one test of a job uuid: canonical lowercase 8-4-4-4-12 hex, nothing else.

A TEE VM is named ``<creator>-<uuid>`` and its image ``<repository>/<creator>-<uuid>``.
Those names can be split back into creator and job only because the uuid has one fixed
form: a uuid ``bob-<u>`` listed for alice makes ``alice-bob-<u>``, the VM of creator
``alice-bob``'s job ``<u>``. So a uuid is used for a job's identity only in the form the
API itself generates (``uuid.New().String()``: 36 characters, lowercase hex and hyphens),
never tidied up (no case folding, no stripping of braces or whitespace): anything else
leaves the job unidentified. No module imports from the package, so every part (the
verifier, the records, the routes, the command line) can call it.
"""

from __future__ import annotations

import re

CANONICAL_FORM = "lowercase 8-4-4-4-12 hex, 36 characters"
_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def canonical_uuid(value: object) -> str | None:
    """``value`` if it is a job uuid in canonical form, else None (never a repaired copy).

    ``fullmatch``, not ``match`` with ``$``: ``$`` also matches before a trailing newline.
    """
    if isinstance(value, str) and _CANONICAL.fullmatch(value):
        return value
    return None
