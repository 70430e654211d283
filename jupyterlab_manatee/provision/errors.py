"""Errors of ``manatee-provision``: each message says what to change."""

from __future__ import annotations


class ProvisionError(Exception):
    """Provisioning cannot go on; the message says why and what to do."""


class DomainError(ProvisionError, ValueError):
    """The domain file is malformed."""


class InputError(ProvisionError, ValueError):
    """The input table does not fit the domain (columns, categories, precision)."""


class MissingExtraError(ProvisionError, ImportError):
    """A library of the ``provision`` extra is not installed."""
