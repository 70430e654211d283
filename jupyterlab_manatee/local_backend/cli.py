"""``manatee-local``: run the local ManaTEE backend until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from .access import TOKEN_ENV
from .backend import DataDirInUse, LocalBackend
from .isolation import DEFAULT_JOB_IDS, IsolationError
from .runner import DEFAULT_JOB_TIMEOUT
from .tokens import (
    DEFAULT_IMAGE_REGISTRY,
    DEFAULT_PROJECT_ID,
    DEFAULT_SERVICE_ACCOUNT,
    DEFAULT_ZONE,
    Deployment,
)

log = logging.getLogger("jupyterlab_manatee.local_backend")


def _id_range(text: str) -> range:
    first, sep, last = text.partition("-")
    if not (sep and first.isdigit() and last.isdigit() and int(first) <= int(last)):
        raise argparse.ArgumentTypeError(f"{text!r} is not FIRST-LAST (e.g. 200000-200999)")
    return range(int(first), int(last) + 1)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="manatee-local",
        description="Serve the ManaTEE job API on this machine and run submitted notebooks "
        "in stage 2 (no hardware TEE: tokens say LOCAL_NO_TEE).",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; anything but loopback is warned about, with the "
        "addresses it makes the backend reachable at",
    )
    parser.add_argument("--port", type=int, default=8901, help="port (0 picks a free one)")
    parser.add_argument(
        "--data-dir", type=Path, required=True, help="jobs, archives, outputs, tokens and keys"
    )
    parser.add_argument("--max-running", type=int, default=2, help="jobs executing at once")
    parser.add_argument(
        "--job-timeout",
        type=float,
        default=DEFAULT_JOB_TIMEOUT,
        help="seconds after its creation a job still in progress fails with status 7 "
        "(default: 21600, upstream's 6 hours)",
    )
    parser.add_argument(
        "--max-archive-size",
        type=int,
        default=6 * 1024**3,
        help="largest accepted workspace archive, in bytes",
    )
    parser.add_argument(
        "--stage2-data-dir",
        type=Path,
        default=None,
        help="real data for stage 2: its files are copied into each run's workspace at the "
        "same relative paths (e.g. data/x.csv.s2), and runs see its path as "
        "MANATEE_STAGE2_DATA_DIR",
    )
    parser.add_argument(
        "--public-url", default=None, help="base URL for signed URLs and the tokens' issuer"
    )
    parser.add_argument("--kernel-name", default="python3", help="Jupyter kernel for the runs")
    parser.add_argument(
        "--stage2-python",
        default=None,
        help="the Python that runs stage-2 notebooks (default: the backend's own). Give "
        "one of an environment made from jupyterlab_manatee/tee-image-packages.txt (./dev "
        "run makes it) to have the TEE image's packages: no xgboost, no Google libraries",
    )
    parser.add_argument(
        "--job-uids",
        type=_id_range,
        default=DEFAULT_JOB_IDS,
        metavar="FIRST-LAST",
        help="as root, each running job runs as a user of its own with an id from this "
        "range, which no user, group or subordinate id of the system may use (default: "
        f"{DEFAULT_JOB_IDS.start}-{DEFAULT_JOB_IDS.stop - 1})",
    )
    access = parser.add_argument_group(
        "access",
        "closed by default: every job route (attestation included) requires the API token "
        "as Authorization; /health, the issuer's discovery/JWKS and signed /storage URLs "
        "do not. Requests must name a served Host; browser requests from another Origin "
        "are refused",
    )
    access.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV) or None,
        help=f"the API token (default: ${TOKEN_ENV}, else the one made on first start and "
        "kept in <data-dir>/api-token, mode 0600; a given token is written there too)",
    )
    access.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME[:PORT]",
        help="also answer requests whose Host is NAME (with this port unless given); "
        "repeatable. Always allowed: 127.0.0.1, localhost, [::1] and the public URL's host",
    )
    faithful = parser.add_argument_group(
        "faithful behaviour",
        "as the real API: one workspace object per creator, replaced by each submit and "
        "read by a job's build only when the reconciler starts it (status 0 -> 1)",
    )
    faithful.add_argument(
        "--reconcile-interval",
        type=float,
        default=10.0,
        help="seconds between the reconciler's looks for jobs whose build to start "
        "(upstream: about 10); 0 starts a build as soon as a slot is free",
    )
    faithful.add_argument(
        "--max-expansion-ratio",
        type=float,
        default=20.0,
        help="a workspace archive may unpack to at most this many times its own size "
        "(at least 64 KiB times it): larger ones, gzip bombs included, fail the build (2)",
    )
    deployment = parser.add_argument_group(
        "deployment",
        "what the tokens name as the deployment (submods.gce, google_service_accounts, "
        "image_reference), for a verifier's deployment pins",
    )
    deployment.add_argument("--project-id", default=DEFAULT_PROJECT_ID, help="GCP project id")
    deployment.add_argument(
        "--project-number",
        default="",
        help="GCP project number (default: 12 digits made from the project id)",
    )
    deployment.add_argument(
        "--service-account", default=DEFAULT_SERVICE_ACCOUNT, help="the TEE's service account"
    )
    deployment.add_argument(
        "--image-registry",
        default=DEFAULT_IMAGE_REGISTRY,
        help="registry the job images are named under (<registry>/<creator>-<uuid>)",
    )
    deployment.add_argument("--zone", default=DEFAULT_ZONE, help="zone the runs are said to be in")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    return parser


async def _serve(args: argparse.Namespace) -> None:
    backend = LocalBackend(
        data_dir=args.data_dir,
        host=args.host,
        port=args.port,
        public_url=args.public_url,
        max_running=args.max_running,
        job_timeout=args.job_timeout,
        max_archive_size=args.max_archive_size,
        stage2_data_dir=args.stage2_data_dir,
        kernel_name=args.kernel_name,
        stage2_python=args.stage2_python,
        token=args.token,
        allowed_hosts=args.allowed_host,
        reconcile_interval=args.reconcile_interval,
        max_expansion_ratio=args.max_expansion_ratio,
        job_ids=args.job_uids,
        deployment=Deployment(
            project_id=args.project_id,
            project_number=args.project_number,
            service_account=args.service_account,
            image_registry=args.image_registry,
            zone=args.zone,
        ),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await backend.start()
    log.info("manatee-local ready at %s (API token in %s)", backend.url, backend.layout.api_token)
    try:
        await stop.wait()
    finally:
        log.info("manatee-local stopping")
        await backend.stop()
        log.info("manatee-local stopped")


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(_serve(args))
    except (DataDirInUse, IsolationError, ValueError) as exc:
        log.error("%s", exc)
        return 1
    except OSError as exc:
        log.error("cannot serve on %s:%s: %s", args.host, args.port, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
