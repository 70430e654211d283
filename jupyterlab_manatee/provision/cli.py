"""``manatee-provision``: make the stage-1 (synthetic) file from the real table with MST.

    manatee-provision insurance.csv --domain insurance.domain.json --epsilon 3 \\
        --output data/insurance.csv.s1 [--report report.json] \\
        [--upload-s1 gs://stage1-bucket] [--upload-s2 gs://stage2-bucket]

Exit status: 0 done, 1 an error (the message says what to change), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import math
import secrets
import sys
from pathlib import Path
from typing import Any

from .errors import ProvisionError

DEFAULT_DELTA = 1e-9

DESCRIPTION = """\
Make differentially private synthetic data (stage 1) from a real table (stage 2) with
MST (McKenna, Miklau, Sheldon 2021). The domain file fixes each column's categories or
numeric bins; write it from public knowledge, never from the data. Numbers are drawn
inside their bins with one more decimal than the input has, so no real value is copied.

Privacy notes: keep the seed secret when the real data is private (whoever knows it and
the output can undo the noise); omit --seed for a fresh random one. The report compares
the output with the real table: it is NOT private; keep it with the real data.
"""


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


def _delta(text: str) -> float:
    value = _positive_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"delta must be below 1: {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="manatee-provision",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", type=Path, help="the real table: a CSV file with a header row")
    p.add_argument("--domain", type=Path, required=True, help="the domain file (JSON)")
    p.add_argument("--output", type=Path, required=True, help="where to write the synthetic CSV")
    p.add_argument("--epsilon", type=_positive_float, required=True, help="privacy budget")
    p.add_argument("--delta", type=_delta, default=DEFAULT_DELTA, help=f"default {DEFAULT_DELTA:g}")
    p.add_argument("--seed", type=_seed, default=None, help="for a reproducible run (keep secret)")
    p.add_argument("--rows", type=_positive_int, default=None, help="default: a noisy count")
    p.add_argument(
        "--iters", type=_positive_int, default=1000, help="estimation iterations (default 1000)"
    )
    p.add_argument("--report", type=Path, default=None, help="also write the report as JSON")
    p.add_argument(
        "--name", default=None, help="data name for the uploads (default: the input's file name)"
    )
    p.add_argument(
        "--upload-s1",
        metavar="LOCATION",
        default=None,
        help="put the synthetic file there: a folder or gs://bucket[/prefix], with an "
        "optional {name} placeholder",
    )
    p.add_argument(
        "--upload-s2", metavar="LOCATION", default=None, help="put the real table there, alike"
    )
    p.add_argument("--gcp-project", default=None, help="project for gs:// uploads")
    p.add_argument(
        "--overwrite", action="store_true", help="replace existing output, report and uploads"
    )
    return p


def summary(report: dict[str, Any]) -> str:
    """The report in a few lines of text."""
    privacy = report["privacy"]
    closeness = report["not_private"]["distances"]
    one, two = closeness["one_way"], closeness["two_way"]
    pairs = ", ".join(f"{a}-{b}" for a, b in report["selected_marginals"])
    return "\n".join(
        [
            f"{report['mechanism']}: {report['rows']['output']} rows in {report['seconds']} s",
            f"privacy spent: epsilon {privacy['epsilon_spent']:.4g}, delta {privacy['delta']:g} "
            f"(zCDP rho {privacy['rho_spent']:.4g}; 1-way sigma {privacy['one_way']['sigma']:.3g},"
            f" 2-way sigma {privacy['two_way']['sigma']:.3g})",
            f"2-way marginals measured: {pairs}",
            "not private, for the data owner only: total-variation distance to the real table, "
            f"1-way mean {one['mean']:.3f} (max {one['max']:.3f}), "
            f"2-way mean {two['mean']:.3f} (max {two['max']:.3f})",
        ]
    )


def run(args: argparse.Namespace) -> list[str]:
    """Provision as the arguments say; returns the lines to print."""
    from .domain import load_domain
    from .files import read_table, upload, write_csv, write_whole
    from .mst import synthesize

    if args.output.resolve() == args.input.resolve():
        raise ProvisionError("--output must not be the input file")
    for target in (args.output, args.report):
        if target is not None and target.exists() and not args.overwrite:
            # checked now too, so a long run is not wasted (and again when writing)
            raise ProvisionError(f"{target} exists; pass --overwrite to replace it")
    domain = load_domain(args.domain)
    header, rows = read_table(args.input)
    seed = args.seed if args.seed is not None else secrets.randbits(63)
    result = synthesize(
        rows,
        header,
        domain,
        epsilon=args.epsilon,
        delta=args.delta,
        seed=seed,
        output_rows=args.rows,
        iters=args.iters,
    )
    result.report["seed"] = seed if args.seed is not None else "random, not recorded"
    result.report["input"] = str(args.input)
    result.report["domain"] = str(args.domain)
    write_csv(args.output, domain.names, result.records(), overwrite=args.overwrite)
    lines = [f"wrote {args.output}", summary(result.report)]
    if args.report is not None:
        text = json.dumps(result.report, indent=2) + "\n"
        write_whole(args.report, lambda h: h.write(text), overwrite=args.overwrite, mode=0o600)
        lines.append(f"report (not private) written to {args.report}")
    name = args.name or args.input.name
    options = {"overwrite": args.overwrite, "gcp_project": args.gcp_project}
    if args.upload_s1:
        where = upload(args.output, args.upload_s1, name, **options)
        lines.append(f"stage-1 file uploaded to {where}")
    if args.upload_s2:
        where = upload(args.input, args.upload_s2, name, **options)
        lines.append(f"stage-2 file uploaded to {where}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit status."""
    args = parser().parse_args(argv)
    try:
        lines = run(args)
    except (ProvisionError, ValueError) as error:
        print(f"manatee-provision: error: {error}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
