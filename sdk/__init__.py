"""ManaTEE data SDK: the same notebook reads stage-1 data in JupyterLab and stage-2 data
in the TEE.

    import sdk, io, pandas
    sdk.gcp.init("<project id>", "<workload identity pool>", "<TEE service account name>")
    repo = sdk.DataRepo("gs://<stage-1 bucket>", "gs://<stage-2 bucket>")
    data = pandas.read_csv(io.StringIO(repo.get_data("insurance.csv")))

This package is pure Python and self-contained (it imports nothing from the JupyterLab
extension), so copying the ``sdk/`` folder beside a notebook makes ``import sdk`` work.
Google libraries are imported only when a ``gs://`` location is read.
"""

from . import gcp
from ._version import __version__
from .errors import (
    CredentialsError,
    InvalidStageError,
    MissingPackageError,
    StageAccessError,
    UnsupportedLocationError,
)
from .repo import DataRepo
from .stage import STAGE_ENV, current_stage

__all__ = [
    "STAGE_ENV",
    "CredentialsError",
    "DataRepo",
    "InvalidStageError",
    "MissingPackageError",
    "StageAccessError",
    "UnsupportedLocationError",
    "__version__",
    "current_stage",
    "gcp",
]
