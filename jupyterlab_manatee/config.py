"""All settings of the extension on one ``Configurable``.

Precedence, as in jupyterlab-git: explicit config (``jupyter_server_config.py`` or the
command line) beats the environment, which beats the built-in default. The environment is
read in ``@default`` methods, so traitlets applies explicit config over it by itself.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from urllib.parse import urlsplit, urlunsplit

from traitlets import Bool, Enum, Float, Int, List, TraitError, Unicode, default, validate
from traitlets.config import Configurable

ENV_API_URL = "DATA_CLEAN_ROOM_HOST"
ENV_USER_TOKEN = "USER_TOKEN"
ENV_CREATOR = "MANATEE_CREATOR"
ENV_PROJECT_ID = "MANATEE_PROJECT_ID"
ENV_TEE_SERVICE_ACCOUNTS = "MANATEE_TEE_SERVICE_ACCOUNTS"
ENV_IMAGE_REPOSITORY = "MANATEE_IMAGE_REPOSITORY"

# The API's own rule (creator 1..31 characters, no "..") and the stricter shape that image
# tags and VM names need (the creator ends up in both; GCE wants a VM name to start with a
# lowercase letter, and the VM is named <creator>-<uuid>).
CREATOR_MAX_LENGTH = 31
SAFE_CREATOR_RE = re.compile(r"^[a-z][a-z0-9-]{0,25}$")

#: What the Authorization header can carry the same way through both HTTP clients (aiohttp
#: sends UTF-8, tornado Latin-1): printable ASCII, spaces and tabs only inside (RFC 9110's
#: field-value; a server strips them at either end, so the token would not match).
HEADER_VALUE_RE = re.compile(r"(?:[\x21-\x7e](?:[\x20\x09\x21-\x7e]*[\x21-\x7e])?)?")
USER_TOKEN_PROBLEM = (
    "USER_TOKEN has characters an HTTP header cannot carry (only printable ASCII: no line "
    "breaks, control or non-ASCII characters, no space at either end): fix USER_TOKEN or "
    "c.ManateeConfig.user_token"
)

#: The folder beside a notebook that receives its saved outputs (ManateeConfig.outputs_folder).
DEFAULT_OUTPUTS_FOLDER = "manatee-outputs"

DEFAULT_EXCLUDES = [
    ".*",
    ".ipynb_checkpoints/",
    "__pycache__/",
    "node_modules/",
    "venv/",
    "env/",
]


class ManateeConfig(Configurable):
    """Settings of jupyterlab_manatee (configure as ``c.ManateeConfig.<name>``)."""

    api_url = Unicode(
        help=(
            "Base URL of the ManaTEE API, e.g. http://manatee.example.svc.cluster.local. "
            f"Defaults to ${ENV_API_URL}; 'http://' is added when the scheme is missing."
        ),
    ).tag(config=True)

    @default("api_url")
    def _api_url_default(self) -> str:
        return os.environ.get(ENV_API_URL, "")

    user_token = Unicode(
        help=(
            "Value of the Authorization header sent to the API (sent as is, even when "
            f"empty). Defaults to ${ENV_USER_TOKEN}. Never logged nor returned."
        ),
    ).tag(config=True)

    @default("user_token")
    def _user_token_default(self) -> str:
        return os.environ.get(ENV_USER_TOKEN, "")

    creator = Unicode(
        None,
        allow_none=True,
        help=(
            "Creator name sent to the API instead of the logged-in user's name. Set it on "
            "standalone servers, whose anonymous user names are random 32-character ids "
            f"that the API rejects. Defaults to ${ENV_CREATOR}, else the user's name."
        ),
    ).tag(config=True)

    @default("creator")
    def _creator_default(self) -> str | None:
        return os.environ.get(ENV_CREATOR) or None

    creator_mapping = Enum(
        ["as-is", "safe"],
        default_value="as-is",
        help=(
            "How a user name becomes the creator when no explicit creator is set. 'as-is': "
            "used unchanged (refused if the API would refuse it; a warning if it is not "
            "lowercase [a-z0-9-] of at most 26 characters). 'safe': mapped to such a name "
            "(lowercased, other characters turned into '-', a short hash added whenever the "
            "name had to change, so two users never share a creator)."
        ),
    ).tag(config=True)

    extra_env_prefix = Unicode(
        "MANATEE_EXTRA_ENV_",
        help=(
            "Environment variables of the server whose names start with this prefix are "
            "forwarded to the stage-2 run as envs entries {key: <name without prefix>, value}."
        ),
    ).tag(config=True)

    extra_env_allow = List(
        Unicode(),
        default_value=None,
        allow_none=True,
        help=(
            "If set, only these keys (names without the prefix) are forwarded from the "
            "extra-env variables; None forwards every one."
        ),
    ).tag(config=True)

    connect_timeout = Float(
        10.0, help="Seconds to wait for a connection to the API or a signed URL."
    ).tag(config=True)

    request_timeout = Float(
        60.0, help="Seconds a JSON call to the API (list, delete, output, attestation) may take."
    ).tag(config=True)

    upload_timeout = Float(
        3600.0,
        help="Seconds the workspace upload, or an output download, may take in total.",
    ).tag(config=True)

    max_workspace_size = Int(
        5 * 1024**3,
        help=(
            "Largest total size in bytes of the files shipped with a notebook (before "
            "compression). Checked before anything is sent; larger workspaces get HTTP 413."
        ),
    ).tag(config=True)

    large_workspace_size = Int(
        50 * 1024**2,
        min=0,
        help=(
            "Total size in bytes past which the submit dialog names the workspace's largest "
            "files and folders, each with the .manateeignore line that leaves it out (a "
            "large workspace is slow to upload and to build, and rarely meant)."
        ),
    ).tag(config=True)

    exclude = List(
        Unicode(),
        default_value=DEFAULT_EXCLUDES,
        help=(
            "gitignore-style patterns of files never shipped with a notebook (hidden files, "
            "checkpoints, caches, virtual environments, node_modules). Folders holding a "
            "pyvenv.cfg are always left out."
        ),
    ).tag(config=True)

    ignore_file = Unicode(
        ".manateeignore",
        help="Name of the per-folder file whose gitignore-style patterns are also left out.",
    ).tag(config=True)

    compression_level = Int(
        6, min=0, max=9, help="gzip level of the workspace archive (that of `gzip`/`tar -z`)."
    ).tag(config=True)

    background_nice = Int(
        19,
        min=0,
        max=19,
        help=(
            "How many nice steps below the server the threads that scan and compress "
            "workspaces run (Linux): when the CPUs are busy, the server's event loop, and "
            "so every request to this server, goes before the compression of a submit. "
            "0 runs them at the server's priority."
        ),
    ).tag(config=True)

    outputs_folder = Unicode(
        DEFAULT_OUTPUTS_FOLDER,
        help=(
            "Name of the folder, beside the submitting notebook, that receives the outputs "
            "of jobs this server submitted (out-<id>-<notebook>.ipynb and its "
            ".attestation.json); created when missing. The extension owns it: a folder of "
            "this name (and an output left beside its notebook with its .attestation.json) "
            "is never shipped in a submission, so stage-2 results never travel back. One "
            "folder name (no '/' or '..'); '' saves outputs beside the notebook itself, as "
            "before, and excludes nothing."
        ),
    ).tag(config=True)

    @validate("outputs_folder")
    def _check_outputs_folder(self, proposal: dict) -> str:
        value = proposal["value"]
        problem = outputs_folder_problem(value)
        if problem:
            raise TraitError(f"c.ManateeConfig.outputs_folder = {value!r}: {problem}")
        return value

    output_dir = Unicode(
        "manatee-outputs",
        help=(
            "Folder, relative to the contents root, that receives outputs of jobs this "
            "server did not submit, or whose notebook's folder is gone (those it did "
            "submit go to outputs_folder beside their notebook)."
        ),
    ).tag(config=True)

    local_setup_file = Unicode(
        "",
        help=(
            "A JSON file that says the local ManaTEE backend is being set up (./dev run "
            "writes it while it makes the stage-2 environment on a first start, and removes "
            "it once the backend answers): while it exists and the API does not answer, "
            "GET manatee/config and the panel say 'being set up: about N s left' rather "
            "than 'not reachable'. '' (the default): no local setup is watched."
        ),
    ).tag(config=True)

    state_dir = Unicode(
        help=(
            "Folder for the extension's own small records (which notebook each job came "
            "from). Defaults to <jupyter data dir>/manatee."
        ),
    ).tag(config=True)

    @default("state_dir")
    def _state_dir_default(self) -> str:
        from jupyter_core.paths import jupyter_data_dir

        return os.path.join(jupyter_data_dir(), "manatee")

    temp_dir = Unicode(
        None,
        allow_none=True,
        help="Folder for temporary workspace archives; None uses the system's temp folder.",
    ).tag(config=True)

    queue_submissions = Bool(
        True,
        help=(
            "Hold a submission back while an earlier job of the same creator is in status 0 "
            "or 1: the real API keeps one workspace per creator, read by the image builder "
            "only when the build starts, so sending earlier would replace that job's files. "
            "Held submissions are archived at once, kept under state_dir and sent when the "
            "slot frees. Turn off only to show the overwrite."
        ),
    ).tag(config=True)

    queue_poll_interval = Float(
        5.0, help="Seconds between looks at the API while submissions are queued."
    ).tag(config=True)

    job_limit = Int(
        3,
        help=(
            "Jobs a creator may have in progress (status 0, 1, 3 or 4) at once, queued "
            "submissions included: the API's own limit."
        ),
    ).tag(config=True)

    check_health = Bool(
        True, help="Whether GET manatee/config probes the API's /health route."
    ).tag(config=True)

    # --- attestation verification -----------------------------------------------------

    trusted_issuers = List(
        Unicode(),
        default_value=["https://confidentialcomputing.googleapis.com"],
        help=(
            "Issuers (token 'iss') of production TEE attestation tokens. Their keys are "
            "found at <iss>/.well-known/openid-configuration -> jwks_uri; keys are never "
            "fetched for any other issuer."
        ),
    ).tag(config=True)

    local_issuers = List(
        Unicode(),
        default_value=[],
        help=(
            "Issuers trusted to sign tokens of runs without a hardware TEE (the local "
            "backend's URL). Their tokens are checked like the others but always reported "
            "as 'local run, no hardware TEE'. Empty: no local issuer is trusted."
        ),
    ).tag(config=True)

    audience = Unicode(
        "https://research.tiktok.com/",
        help="The 'aud' an attestation token must carry (what the executor asks the TEE for).",
    ).tag(config=True)

    hwmodel = List(
        Unicode(),
        default_value=["GCP_INTEL_TDX"],
        help="Accepted 'hwmodel' values of production tokens (e.g. add GCP_AMD_SEV).",
    ).tag(config=True)

    jwks_file = Unicode(
        None,
        allow_none=True,
        help=(
            "A saved JWKS file to verify offline: its keys are used and nothing is fetched. "
            'Either {"keys": [...]} (for every trusted issuer) or {"<issuer>": {"keys": '
            "[...]}}. None fetches the issuers' keys."
        ),
    ).tag(config=True)

    jwks_cache_ttl = Float(
        3600.0, help="Seconds fetched signing keys are reused before fetching them again."
    ).tag(config=True)

    clock_skew = Float(
        300.0,
        help=(
            "Seconds of clock difference allowed when comparing a token's iat with the job's "
            "created_at/updated_at and with now."
        ),
    ).tag(config=True)

    # --- the deployment a verified token must come from ------------------------------

    project_id = Unicode(
        help=(
            "GCP project of this ManaTEE deployment's TEE VMs: a token is verified only when "
            "its submods.gce.project_id equals it (Google signs every customer's Confidential "
            f"Space tokens with the same keys). Defaults to ${ENV_PROJECT_ID}; unset, no "
            "token is verified."
        ),
    ).tag(config=True)

    @default("project_id")
    def _project_id_default(self) -> str:
        return os.environ.get(ENV_PROJECT_ID, "").strip()

    tee_service_accounts = List(
        Unicode(),
        help=(
            "Service accounts the deployment's TEE VMs run as (upstream's "
            "dcr-<env>-cvm-sa@<project>.iam.gserviceaccount.com): a token's "
            "google_service_accounts must hold one of them. Defaults to "
            f"${ENV_TEE_SERVICE_ACCOUNTS} (comma-separated); empty, no token is verified."
        ),
    ).tag(config=True)

    @default("tee_service_accounts")
    def _tee_service_accounts_default(self) -> list[str]:
        raw = os.environ.get(ENV_TEE_SERVICE_ACCOUNTS, "")
        return [a.strip() for a in raw.split(",") if a.strip()]

    image_repository = Unicode(
        help=(
            "Optional: the repository the deployment's builder pushes job images to (e.g. "
            "us-docker.pkg.dev/<project>/<repo>); a token's image_reference must be "
            "'<image_repository>/<creator>-<uuid>' (a tag or digest may follow), the repository "
            f"compared whole. Defaults to ${ENV_IMAGE_REPOSITORY}; empty: not checked."
        ),
    ).tag(config=True)

    @default("image_repository")
    def _image_repository_default(self) -> str:
        return os.environ.get(ENV_IMAGE_REPOSITORY, "").strip().rstrip("/")

    # --- derived values -------------------------------------------------------------

    @property
    def api_base_url(self) -> str | None:
        """The API URL normalised (scheme added, no trailing slash), or None if unusable."""
        url, problem = normalise_api_url(self.api_url)
        return None if problem else url

    @property
    def api_url_problem(self) -> str | None:
        """Why the API URL cannot be used, in words for the operator, or None."""
        return normalise_api_url(self.api_url)[1]

    @property
    def user_token_problem(self) -> str | None:
        """Why the user token cannot be sent (never its value), or None."""
        return user_token_problem(self.user_token)

    @property
    def problem(self) -> str | None:
        """Why the API cannot be called at all (URL, then token), or None."""
        problems = [p for p in (self.api_url_problem, self.user_token_problem) if p]
        return "; ".join(problems) or None


@functools.lru_cache(maxsize=16)
def normalise_api_url(raw: str) -> tuple[str, str | None]:
    """Return (normalised URL, problem); problem is None when the URL is usable.

    Cached: every request reads ``api_base_url`` several times (the job list once per
    job), and parsing the same URL again cost the list proxy ~3% of its CPU under load.
    """
    raw = (raw or "").strip()
    if not raw:
        return "", (
            "ManaTEE API is not configured: set DATA_CLEAN_ROOM_HOST or c.ManateeConfig.api_url"
        )
    if "://" not in raw:
        raw = "http://" + raw
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return raw, (
            f"ManaTEE API URL {redact_url(raw)!r} is not a valid http(s) URL: fix "
            "DATA_CLEAN_ROOM_HOST or c.ManateeConfig.api_url"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return raw, (
            f"ManaTEE API URL {redact_url(raw)!r} has an invalid port: fix "
            "DATA_CLEAN_ROOM_HOST or c.ManateeConfig.api_url"
        )
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, path, "", "")), None


@functools.lru_cache(maxsize=4)
def user_token_problem(token: str) -> str | None:
    """:data:`USER_TOKEN_PROBLEM` unless ``token`` can travel in an HTTP header as it is
    (cached: the manager asks on every request)."""
    return None if HEADER_VALUE_RE.fullmatch(token) else USER_TOKEN_PROBLEM


def redact_url(url: str) -> str:
    """The URL without user info or query, safe to log and to show in a reply."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def outputs_folder_problem(name: str) -> str | None:
    """Why ``name`` cannot be the outputs folder's name, or None ('' is allowed)."""
    if name == "":
        return None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return "the name contains control characters"
    if name.strip() != name:
        return "the name starts or ends with a space; give a plain folder name"
    if "/" in name or "\\" in name or name in (".", ".."):
        return "give one folder name (no '/', '\\', '.' or '..'), e.g. 'manatee-outputs'"
    return None


def creator_problem(name: str) -> str | None:
    """Why the API would refuse ``name`` as creator, or None."""
    if not name:
        return "the creator name is empty"
    if len(name) > CREATOR_MAX_LENGTH:
        return f"the creator name is {len(name)} characters long (the API allows 31)"
    if ".." in name:
        return "the creator name contains '..'"
    return None


def creator_warning(name: str) -> str | None:
    """A warning when ``name`` is valid for the API but unsafe in image tags and VM names."""
    if SAFE_CREATOR_RE.match(name):
        return None
    return (
        f"creator {name!r} is not a lowercase letter followed by lowercase letters, digits "
        "and '-' (at most 26 characters); image builds and TEE VM names may fail for it"
    )


def safe_creator(name: str) -> str:
    """``name`` as a lowercase letter then ``[a-z0-9-]``, at most 26 characters, unique per name.

    A name that is already safe is kept; any other gets a hash of the original appended,
    so ``Alice`` and ``alice`` (or two long names sharing a prefix) stay distinct creators.
    A slug not starting with a letter gets a ``u`` first: GCE refuses VM names like ``1a-…``.
    """
    if SAFE_CREATOR_RE.match(name):
        return name
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:19].strip("-") or "user"
    if not slug[0].isalpha():
        slug = f"u{slug[:18]}"
    return f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:6]}"
