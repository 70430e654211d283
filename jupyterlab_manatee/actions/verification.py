"""Attestation: a job's token fetched, verified against its output and saved beside it;
a saved output re-verified offline against the token saved with it."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path, PurePosixPath
from typing import Any

from ..attestation import (
    NOT_VERIFIED,
    RECORD_SUFFIX,
    JobFacts,
    KeyStore,
    Policy,
    describe_token,
    file_md5,
    make_record,
    parse_token,
    read_record,
    record_name,
    verify_token,
    write_new_record,
)
from ..errors import BadRequest, ManateeError, NotFound, quoted
from ..jobs.job_identity import identify_saved_job
from ..jobs.output import resolve_folder
from ..remote.api_client import ManateeApiClient
from .context import Context
from .jobs import Jobs

TOKEN_UNAVAILABLE = "token unavailable"


class Verification:
    """Verifies tokens with the issuers' keys (cached) and the configured policy."""

    def __init__(self, context: Context, jobs: Jobs) -> None:
        self.context = context
        self.jobs = jobs
        self._keys: KeyStore | None = None
        self._keys_settings: tuple[Any, ...] = ()

    @property
    def keys(self) -> KeyStore:
        """The issuers' signing keys, cached across requests (rebuilt if settings change)."""
        config = self.context.config
        settings = (
            config.jwks_cache_ttl,
            config.jwks_file,
            config.connect_timeout,
            config.request_timeout,
        )
        if self._keys is None or settings != self._keys_settings:
            self._keys = KeyStore(
                ttl=config.jwks_cache_ttl,
                jwks_file=config.jwks_file,
                connect_timeout=config.connect_timeout,
                request_timeout=config.request_timeout,
            )
            self._keys_settings = settings
        return self._keys

    @property
    def policy(self) -> Policy:
        return Policy.from_config(self.context.config)

    async def save_attestation(
        self,
        client: ManateeApiClient,
        creator: str,
        job_id: int,
        saved: str,
        output_md5: str,
        job: JobFacts,
    ) -> dict[str, Any]:
        """Fetch, verify and save the token of a just-saved output; never raises."""
        log = self.context.log
        try:
            token = await _token(client, creator, job_id)
        except ManateeError as e:
            log.warning("ManaTEE: no attestation token for job %d: %s", job_id, e.message)
            return {
                "path": None,
                "verdict": TOKEN_UNAVAILABLE,
                "verified": False,
                "problem": f"The output is saved, but its attestation token is unavailable: "
                f"{e.message}",
            }
        output = PurePosixPath(saved)
        record_path = str(output.with_name(record_name(output.name)))
        verdict = NOT_VERIFIED
        try:
            verification = await verify_token(token, output_md5, self.policy, self.keys, job=job)
            verdict = verification.verdict
            record = make_record(
                output_name=output.name,
                output_md5=output_md5,
                token=token,
                verification=verification,
                job=job,
            )
            target = self.context.root_dir / record_path
            await asyncio.get_running_loop().run_in_executor(None, write_new_record, target, record)
        except FileExistsError:
            problem = f"{record_path} already exists and was not overwritten"
        except Exception as e:  # the output is saved: report, never lose it to a 500
            log.exception("ManaTEE: saving the attestation of job %d failed", job_id)
            problem = f"The attestation could not be saved: {e}"
        else:
            log.info(
                "ManaTEE: attestation of job %d: %s (%s)", job_id, verification.verdict, record_path
            )
            return {
                "path": record_path,
                "verdict": verification.verdict,
                "verified": verification.verified,
            }
        return {
            "path": None,
            "verdict": verdict,
            "verified": False,
            "problem": problem,
        }

    async def attestation(self, creator: str, job_id: int) -> dict[str, Any]:
        """The token, its decoded parts and its verification against the job's output.

        When this server saved the job's output, the file the user keeps is verified against
        the token saved beside it, offline; otherwise the API's copy is.
        """
        saved = self.context.records.saved_output(creator, job_id)
        if saved is not None:
            try:
                return {
                    "source": "saved",
                    **(await self.verify_saved(creator, saved, job_id=job_id)),
                }
            except NotFound:
                self.context.log.info(
                    "ManaTEE: the saved output of job %d is gone; asking the API", job_id
                )
        client = self.context.client
        token = await _token(client, creator, job_id)
        job = await self.jobs.facts(creator, job_id)
        if parse_token(token).kind == "unknown":
            md5, problem = None, "not downloaded: the token cannot be read"
        else:
            md5, problem = await _output_md5(client, creator, job_id)
        verification = await verify_token(
            token, md5, self.policy, self.keys, job=job, output_problem=problem
        )
        return {
            "source": "api",
            "path": None,
            "attestation_path": None,
            "token": token,
            **describe_token(token),
            "job": job.to_json(),
            "verification": verification.to_json(),
        }

    async def verify_saved(
        self, creator: str, path: str, *, job_id: int | None = None
    ) -> dict[str, Any]:
        """Re-verify a saved output against the token saved beside it (no API call).

        The job is the creator's, identified as Report identifies it (see
        :func:`..jobs.job_identity.identify_saved_job`): the saved file's job facts are used only
        where this server has nothing better, and the job check says which. ``job_id`` is
        the job whose output Report knows this is; else this server's record of where it
        saved outputs, else the file.
        """
        root_dir = self.context.root_dir
        loop = asyncio.get_running_loop()
        output, record_file = await loop.run_in_executor(None, _saved_output_paths, root_dir, path)
        try:
            record = await loop.run_in_executor(None, read_record, record_file)
        except FileNotFoundError:
            raise NotFound(
                f"No saved attestation beside {_relative(root_dir, output)}: expected "
                f"{record_file.name}"
            ) from None
        except ValueError as e:
            raise BadRequest(str(e)) from None
        except OSError as e:
            raise BadRequest(f"Cannot read {record_file.name}: {e.strerror or e}") from None
        try:
            md5 = await loop.run_in_executor(None, file_md5, output)
        except ValueError as e:
            raise BadRequest(str(e)) from None
        except OSError as e:
            raise BadRequest(f"Cannot read {output.name}: {e.strerror or e}") from None
        token = record["token"]
        relative = _relative(root_dir, output)
        records = self.context.records
        job = identify_saved_job(
            creator,
            JobFacts.from_json(record.get("job")),
            file_name=record_file.name,
            output_job_id=job_id
            if job_id is not None
            else records.output_job_id(creator, relative),
            record_uuid_of=lambda number: records.uuid_of(creator, number),
            record_id_of=lambda job_uuid: records.id_of(creator, job_uuid),
        )
        verification = await verify_token(token, md5, self.policy, self.keys, job=job)
        saved = record.get("verification")
        return {
            "path": relative,
            "attestation_path": _relative(root_dir, record_file),
            "token": token,
            **describe_token(token),
            "job": job.to_json(),
            "saved_at": record.get("saved_at"),
            "saved_verdict": saved.get("verdict") if isinstance(saved, dict) else None,
            "verification": verification.to_json(),
        }


async def _token(client: ManateeApiClient, creator: str, job_id: int) -> str:
    signed = await client.attestation(creator=creator, job_id=job_id)
    token = await client.fetch_text(signed.url, what="attestation token")
    if not token.strip():
        raise NotFound(f"The attestation token of job {job_id} is empty")
    return token


async def _output_md5(
    client: ManateeApiClient, creator: str, job_id: int
) -> tuple[str | None, str]:
    """MD5 hex of the output as downloaded (not kept), or None and why."""
    digest = hashlib.md5(usedforsecurity=False)
    try:
        signed = await client.output(creator=creator, job_id=job_id)
        await client.download(signed.url, digest.update, what="output")
    except ManateeError as e:
        return None, e.message
    return digest.hexdigest(), ""


def _saved_output_paths(root_dir: Path, path: str) -> tuple[Path, Path]:
    """The saved output (a file under the root) and its attestation record's path.

    ``path`` may name the output or its ``.attestation.json``.
    """
    if not isinstance(path, str) or not path.strip("/"):
        raise BadRequest("Missing 'path': the saved output's path from the contents root")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        raise BadRequest(f"The path {quoted(path)} contains control characters")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"The path {quoted(path)} is not valid UTF-8") from None
    relative = PurePosixPath(path.strip("/"))
    if relative.name.endswith(RECORD_SUFFIX) and len(relative.name) > len(RECORD_SUFFIX):
        relative = relative.with_name(relative.name[: -len(RECORD_SUFFIX)])
    try:
        folder = resolve_folder(root_dir, str(relative.parent))
        output = _inside_root(root_dir, folder / relative.name, path)
        if not output.exists():
            raise NotFound(f"No saved output at {quoted(relative.as_posix())}")
        if not output.is_file():
            raise BadRequest(f"{quoted(relative.as_posix())} is not a file")
    except OSError as e:  # e.g. a name longer than the file system allows
        shown = quoted(relative.as_posix())
        raise BadRequest(f"Cannot look at {shown}: {e.strerror or e}") from None
    return output, _inside_root(root_dir, folder / record_name(relative.name), path)


def _inside_root(root_dir: Path, path: Path, asked: str) -> Path:
    """``path`` with links resolved, refused when it leads out of the contents root."""
    resolved = path.resolve()
    if root_dir not in resolved.parents:
        raise BadRequest(f"{quoted(asked)} leads outside the contents root")
    return resolved


def _relative(root_dir: Path, path: Path) -> str:
    return path.relative_to(root_dir).as_posix()
