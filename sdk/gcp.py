"""Google Cloud credentials for the stage in use, built lazily.

``init(project_id, pool_name, service_account)`` only records its arguments. Nothing is
contacted until a ``gs://`` location is read, and then only for the current stage:

* **Stage 1** (JupyterLab): the environment's default credentials (Application Default
  Credentials), or anonymous access when ``STORAGE_EMULATOR_HOST`` points at an emulator.
  Nothing that belongs to stage 2 (project lookup, STS, impersonation) is contacted: the
  JupyterLab pod may have no right to.
* **Stage 2** (the TEE, Confidential Space): Workload Identity Federation. The attestation
  token the TEE writes to a file is exchanged at Google's Security Token Service for a
  federated token with the audience ``//iam.googleapis.com/projects/<project number>/
  locations/global/workloadIdentityPools/<pool>/providers/<provider>`` (one line), which
  then impersonates ``<service account>@<project id>.iam.gserviceaccount.com``. This is
  google-auth's own ``external_account`` (``identity_pool``) credential.

Every stage-2 setting can be given to ``init`` or through an environment variable
(keyword argument first, then the variable, then the default):

- ``provider`` / ``MANATEE_SDK_PROVIDER``: the pool's provider, default
  ``attestation-verifier``.
- ``project_number`` / ``MANATEE_SDK_PROJECT_NUMBER``: default: looked up (see below).
- ``token_path`` / ``MANATEE_SDK_TOKEN_PATH``: the attestation token file, default
  ``/run/container_launcher/attestation_verifier_claims_token``.
- ``sts_url`` / ``MANATEE_SDK_STS_URL``: default ``https://sts.googleapis.com/v1/token``.
- ``iam_credentials_url`` / ``MANATEE_SDK_IAM_CREDENTIALS_URL``: the IAM Credentials API
  base, default ``https://iamcredentials.googleapis.com``.
- ``resource_manager_url`` / ``MANATEE_SDK_RESOURCE_MANAGER_URL``: the Cloud Resource
  Manager base, default ``https://cloudresourcemanager.googleapis.com``.
- ``MANATEE_SDK_METADATA_URL``: the GCE metadata server, default
  ``http://metadata.google.internal``.

The project number (only in stage 2, only when not given) comes from, in order: the
attestation token's ``submods.gce.project_number`` claim (the token is only read, not
verified: STS verifies it), the metadata server's ``project/numeric-project-id``, and
last Cloud Resource Manager (``GET <resource_manager_url>/v3/projects/<project id>`` with
the environment's default credentials), which needs ``resourcemanager.projects.get``, a
permission the TEE's service account usually lacks.

The Google libraries (google-auth, google-cloud-storage) are not in the TEE's image: a
missing one raises ``MissingPackageError`` naming the pip package to install.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import json
import os
import re
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .errors import CredentialsError, MissingPackageError
from .stage import STAGE_1, STAGE_2, current_stage

if TYPE_CHECKING:  # the Google libraries are imported only when gs:// data is read
    from google.auth.credentials import Credentials
    from google.cloud.storage import Client

DEFAULT_PROVIDER = "attestation-verifier"
DEFAULT_TOKEN_PATH = "/run/container_launcher/attestation_verifier_claims_token"
DEFAULT_STS_URL = "https://sts.googleapis.com/v1/token"
DEFAULT_IAM_CREDENTIALS_URL = "https://iamcredentials.googleapis.com"
DEFAULT_RESOURCE_MANAGER_URL = "https://cloudresourcemanager.googleapis.com"
SUBJECT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)

ENV_PROVIDER = "MANATEE_SDK_PROVIDER"
ENV_PROJECT_NUMBER = "MANATEE_SDK_PROJECT_NUMBER"
ENV_TOKEN_PATH = "MANATEE_SDK_TOKEN_PATH"
ENV_STS_URL = "MANATEE_SDK_STS_URL"
ENV_IAM_CREDENTIALS_URL = "MANATEE_SDK_IAM_CREDENTIALS_URL"
ENV_RESOURCE_MANAGER_URL = "MANATEE_SDK_RESOURCE_MANAGER_URL"
ENV_METADATA_URL = "MANATEE_SDK_METADATA_URL"
DEFAULT_METADATA_URL = "http://metadata.google.internal"
METADATA_TIMEOUT = 3.0
# pip package of each module the SDK imports for gs:// data (the longest prefix wins)
PIP_PACKAGES = {
    "google.cloud.storage": "google-cloud-storage",
    "google.cloud": "google-cloud-storage",
    "google.api_core": "google-api-core",
    "google.auth": "google-auth",
    "google": "google-auth",
    "requests": "requests",
}
# google-cloud-storage >= 3.x fetches bucket metadata in the background for tracing; an
# object-viewer role cannot read it, and the SDK promises not to ask.
_BUCKET_METADATA_ENV = "DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA"
_EMULATOR_ENV = "STORAGE_EMULATOR_HOST"


@dataclass(frozen=True)
class GcpConfig:
    """What ``init`` recorded; ``None`` fields fall back to environment, then default."""

    project_id: str
    pool_name: str
    service_account: str
    provider: str | None = None
    project_number: str | None = None
    token_path: str | None = None
    sts_url: str | None = None
    iam_credentials_url: str | None = None
    resource_manager_url: str | None = None

    @property
    def service_account_email(self) -> str:
        """The impersonated account; a full e-mail address is taken as it is."""
        if "@" in self.service_account:
            return self.service_account
        return f"{self.service_account}@{self.project_id}.iam.gserviceaccount.com"

    def setting(self, field: str, env: str, default: str) -> str:
        """Resolve one setting: keyword argument, then environment variable, then default."""
        value = getattr(self, field)
        if value is None:
            value = os.environ.get(env, "").strip() or default
        return value

    @property
    def resolved_provider(self) -> str:
        return self.setting("provider", ENV_PROVIDER, DEFAULT_PROVIDER)

    @property
    def resolved_token_path(self) -> str:
        return self.setting("token_path", ENV_TOKEN_PATH, DEFAULT_TOKEN_PATH)

    @property
    def resolved_sts_url(self) -> str:
        return self.setting("sts_url", ENV_STS_URL, DEFAULT_STS_URL)

    @property
    def resolved_iam_credentials_url(self) -> str:
        url = self.setting(
            "iam_credentials_url", ENV_IAM_CREDENTIALS_URL, DEFAULT_IAM_CREDENTIALS_URL
        )
        return url.rstrip("/")

    @property
    def resolved_resource_manager_url(self) -> str:
        url = self.setting(
            "resource_manager_url", ENV_RESOURCE_MANAGER_URL, DEFAULT_RESOURCE_MANAGER_URL
        )
        return url.rstrip("/")

    @property
    def impersonation_url(self) -> str:
        return (
            f"{self.resolved_iam_credentials_url}/v1/projects/-/serviceAccounts/"
            f"{self.service_account_email}:generateAccessToken"
        )

    def audience(self, project_number: str) -> str:
        """The Workload Identity Federation audience for this pool and provider."""
        return (
            f"//iam.googleapis.com/projects/{project_number}/locations/global/"
            f"workloadIdentityPools/{self.pool_name}/providers/{self.resolved_provider}"
        )


_lock = threading.RLock()
_config: GcpConfig | None = None
_project_number: str | None = None
_credentials: dict[int, Any] = {}
_clients: dict[int, Any] = {}


def pip_package(module: str) -> str:
    """The pip package that provides ``module`` (for the install advice)."""
    for prefix in sorted(PIP_PACKAGES, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return PIP_PACKAGES[prefix]
    return module.split(".")[0]


def require(module: str) -> ModuleType:
    """Import ``module``, or say which pip package to install (the TEE image has none)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        missing = error.name or module
        package = pip_package(missing)
        raise MissingPackageError(
            f"reading gs:// data needs the Python package {package!r} (module {missing} is "
            f"missing). Install it with '%pip install {package}' in the notebook's first "
            "cell: the TEE's stage-2 image does not include it.",
            name=missing,
        ) from error


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or value.strip() == "":
        raise ValueError(f"sdk.gcp.init: {what} must be a non-empty str, got {value!r}")
    return value.strip()


def init(
    project_id: str,
    pool_name: str,
    service_account: str,
    *,
    provider: str | None = None,
    project_number: str | int | None = None,
    token_path: str | os.PathLike[str] | None = None,
    sts_url: str | None = None,
    iam_credentials_url: str | None = None,
    resource_manager_url: str | None = None,
) -> None:
    """Record the Google Cloud project, workload identity pool and TEE service account.

    Nothing is contacted here (in either stage): credentials are built on the first read
    of a ``gs://`` location, for the stage in use. ``service_account`` is the account's
    name (``<name>@<project_id>.iam.gserviceaccount.com`` is impersonated) or its full
    e-mail address. The keyword arguments override the stage-2 settings described in
    this module's docstring (each also settable by an environment variable).
    """
    global _config, _project_number
    if project_number is not None:
        project_number = str(project_number).strip()
        if not project_number.isdigit():
            raise ValueError(f"sdk.gcp.init: project_number must be digits, got {project_number!r}")
    config = GcpConfig(
        project_id=_text(project_id, "project_id"),
        pool_name=_text(pool_name, "pool_name"),
        service_account=_text(service_account, "service_account"),
        provider=None if provider is None else _text(provider, "provider"),
        project_number=project_number,
        token_path=None if token_path is None else os.fspath(token_path),
        sts_url=sts_url,
        iam_credentials_url=iam_credentials_url,
        resource_manager_url=resource_manager_url,
    )
    with _lock:
        _config = config
        _project_number = None
        _credentials.clear()
        _clients.clear()


def reset() -> None:
    """Forget ``init``'s arguments and every cached credential and client."""
    global _config, _project_number
    with _lock:
        _config = None
        _project_number = None
        _credentials.clear()
        _clients.clear()


def config() -> GcpConfig | None:
    """Return what ``init`` recorded, or ``None`` before ``init``."""
    return _config


def _stage(stage: int | None) -> int:
    if stage is None:
        return current_stage()
    if stage not in (STAGE_1, STAGE_2):
        raise ValueError(f"stage must be 1 or 2, got {stage!r}")
    return stage


def _require_config() -> GcpConfig:
    if _config is None:
        raise CredentialsError(
            "stage 2 reads gs:// data as the TEE's service account, through workload "
            "identity federation: call sdk.gcp.init(project_id, pool_name, "
            "service_account) before reading"
        )
    return _config


def identity(stage: int | None = None) -> str:
    """Describe, for error messages, which identity reads ``gs://`` data in ``stage``."""
    stage = _stage(stage)
    if stage == STAGE_2:
        if _config is None:
            return "no identity (stage 2 needs sdk.gcp.init(...) first)"
        return (
            f"service account {_config.service_account_email}, impersonated with the "
            f"attestation token {_config.resolved_token_path} through workload identity "
            f"pool {_config.pool_name!r}, provider {_config.resolved_provider!r} (stage 2)"
        )
    emulator = os.environ.get(_EMULATOR_ENV)
    if emulator and STAGE_1 not in _credentials:
        return f"anonymous access to the storage emulator {emulator} (stage 1)"
    creds = _credentials.get(STAGE_1)
    if creds is None:
        return "the environment's default credentials (stage 1)"
    email = getattr(creds, "service_account_email", None)
    described = f"{type(creds).__module__}.{type(creds).__name__}" + (f" {email}" if email else "")
    return f"the environment's default credentials ({described}) (stage 1)"


def project_number() -> str:
    """Return the project number for the stage-2 audience (looked up once when not given).

    Only stage 2 needs it; the lookup uses the environment's default credentials.
    """
    global _project_number
    config = _require_config()
    given = config.project_number or os.environ.get(ENV_PROJECT_NUMBER, "").strip()
    if given:
        if not given.isdigit():
            raise ValueError(f"{ENV_PROJECT_NUMBER} must be digits, got {given!r}")
        return given
    with _lock:
        if _project_number is None:
            _project_number = (
                _number_from_token(config.resolved_token_path)
                or _number_from_metadata()
                or _lookup_project_number(config)
            )
        return _project_number


def _number_from_token(path: str) -> str | None:
    """``submods.gce.project_number`` of the attestation token, or ``None``.

    Confidential Space puts the VM's project number in its token, so the TEE's account
    needs no Resource Manager permission. The claims are read unverified: they only
    shape the audience, and STS verifies the token itself.
    """
    try:
        with open(path, encoding="ascii") as file:
            payload = file.read().strip().split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        number = str(claims["submods"]["gce"]["project_number"])
    except (OSError, IndexError, ValueError, binascii.Error, KeyError, TypeError):
        return None
    return number if number.isdigit() else None


def _number_from_metadata() -> str | None:
    """The project number from the GCE metadata server, or ``None`` when unreachable."""
    base = os.environ.get(ENV_METADATA_URL, "").strip() or DEFAULT_METADATA_URL
    request = urllib.request.Request(
        f"{base.rstrip('/')}/computeMetadata/v1/project/numeric-project-id",
        headers={"Metadata-Flavor": "Google"},
    )
    try:
        with urllib.request.urlopen(request, timeout=METADATA_TIMEOUT) as response:
            number = response.read(64).decode("ascii", "replace").strip()
    except (OSError, ValueError):
        return None
    return number if number.isdigit() else None


def _lookup_project_number(config: GcpConfig) -> str:
    google_auth = require("google.auth")
    auth = require("google.auth.exceptions")
    AuthorizedSession = require("google.auth.transport.requests").AuthorizedSession

    url = f"{config.resolved_resource_manager_url}/v3/projects/{config.project_id}"
    advice = (
        f"pass project_number=... to sdk.gcp.init or set {ENV_PROJECT_NUMBER} to skip the lookup"
    )
    try:
        creds, _ = google_auth.default(scopes=list(SCOPES))
        with AuthorizedSession(creds) as session:
            response = session.get(url, timeout=30)
    except (auth.GoogleAuthError, OSError) as error:
        raise CredentialsError(
            f"could not look up the number of project {config.project_id!r} at {url} "
            f"with the environment's default credentials: {error}; {advice}"
        ) from error
    if response.status_code != 200:
        raise CredentialsError(
            f"looking up the number of project {config.project_id!r} at {url} answered "
            f"HTTP {response.status_code}: {response.text[:300]}; {advice}"
        )
    try:
        name = response.json()["name"]
    except (ValueError, KeyError, TypeError) as error:
        raise CredentialsError(f"unexpected answer from {url}; {advice}") from error
    match = re.fullmatch(r"projects/(\d+)", str(name))
    if match is None:
        raise CredentialsError(f"unexpected project name {name!r} from {url}; {advice}")
    return match.group(1)


def credentials(stage: int | None = None) -> Credentials:
    """Return (and cache) the Google credentials of ``stage`` (default: the current one).

    Stage 1: the environment's default credentials. Stage 2: the workload identity
    federation credential described in this module's docstring. The credentials are
    not refreshed here; the first request does that.
    """
    stage = _stage(stage)
    with _lock:
        if stage not in _credentials:
            _credentials[stage] = (
                _stage2_credentials() if stage == STAGE_2 else _stage1_credentials()
            )
        return _credentials[stage]


def _stage1_credentials() -> Credentials:
    google_auth = require("google.auth")
    auth = require("google.auth.exceptions")

    try:
        creds, _ = google_auth.default(scopes=list(SCOPES))
    except auth.DefaultCredentialsError as error:
        raise CredentialsError(
            "stage 1 reads gs:// data with the environment's default credentials, and "
            f"none were found ({error}). Run 'gcloud auth application-default login' or "
            "set GOOGLE_APPLICATION_CREDENTIALS."
        ) from error
    return creds


def _stage2_credentials() -> Credentials:
    identity_pool = require("google.auth.identity_pool")
    config = _require_config()
    token_path = config.resolved_token_path
    if not os.path.isfile(token_path):
        raise CredentialsError(
            f"stage 2 needs the TEE's attestation token file {token_path}, which does not "
            f"exist: stage 2 runs inside the TEE (Confidential Space), which writes it. "
            f"Set {ENV_TOKEN_PATH} or token_path= if it lives elsewhere."
        )
    return identity_pool.Credentials(
        audience=config.audience(project_number()),
        subject_token_type=SUBJECT_TOKEN_TYPE,
        token_url=config.resolved_sts_url,
        credential_source={"file": token_path},
        service_account_impersonation_url=config.impersonation_url,
        scopes=list(SCOPES),
    )


def storage_client(stage: int | None = None) -> Client:
    """Return (and cache) a ``google.cloud.storage.Client`` for ``stage``'s identity.

    With ``STORAGE_EMULATOR_HOST`` set, stage 1 talks to the emulator anonymously;
    stage 2 still uses its federated credentials (the emulator ignores them).
    """
    stage = _stage(stage)
    with _lock:
        if stage in _clients:
            return _clients[stage]
        os.environ.setdefault(_BUCKET_METADATA_ENV, "true")
        storage = require("google.cloud.storage")

        if stage == STAGE_2:
            client = storage.Client(
                project=_require_config().project_id, credentials=credentials(STAGE_2)
            )
        elif os.environ.get(_EMULATOR_ENV):
            client = storage.Client(project=None)
        else:
            client = storage.Client(project=None, credentials=credentials(STAGE_1))
        _clients[stage] = client
        return client
