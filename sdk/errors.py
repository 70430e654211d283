"""Exceptions of the data SDK.

Each one subclasses the built-in exception a caller would already catch (``ValueError``,
``PermissionError``), so existing ``except`` clauses keep working.
"""

from __future__ import annotations


class InvalidStageError(ValueError):
    """``EXECUTION_STAGE`` holds a value that is neither stage 1 nor stage 2."""


class StageAccessError(PermissionError):
    """A read of the stage-2 (real) data was attempted in stage 1 (JupyterLab)."""


class CredentialsError(PermissionError):
    """Credentials for the stage in use could not be obtained or were refused."""


class UnsupportedLocationError(ValueError):
    """A data location string has a scheme or shape the SDK cannot read."""


class MissingPackageError(ModuleNotFoundError):
    """A Google library the SDK needs for ``gs://`` data is not installed.

    The TEE's stage-2 image has none of them, so the message names the pip package to
    install in the notebook's first cell rather than only the missing module.
    """
