"""``python -m tests.benchmarks``: run the benchmarks and print the table."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path

from .bench import OPTIONAL_PARTS, PARTS, PROVISION_ENGINES, SMARTNOISE_ENV, Options, run, table
from .data import parse_size


def _sizes(text: str) -> list[int]:
    try:
        return [parse_size(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parts(text: str) -> tuple[str, ...]:
    parts = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(set(parts) - set(PARTS) - set(OPTIONAL_PARTS))
    if unknown or not parts:
        raise argparse.ArgumentTypeError(f"choose among {', '.join(PARTS + OPTIONAL_PARTS)}")
    return parts


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"whole numbers, comma-separated: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"positive whole numbers: {text!r}")
    return counts


def _engines(text: str) -> tuple[str, ...]:
    engines = tuple(part.strip() for part in text.split(",") if part.strip())
    if not engines or set(engines) - set(PROVISION_ENGINES):
        raise argparse.ArgumentTypeError(f"choose among {', '.join(PROVISION_ENGINES)}")
    return engines


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tests.benchmarks",
        description="Measure submit, event-loop latency, output download, the job-list "
        "proxy and sdk reads against baselines taken in the same run; with --only "
        "provision, manatee-provision on large tables with each engine (wall, rows/s, "
        "peak RSS) beside smartnoise-synth's MST.",
    )
    p.add_argument("--sizes", type=_sizes, help="workspace sizes (default 64M,256M,1G)")
    p.add_argument("--output-size", type=_size, help="executed notebook size (default 500M)")
    p.add_argument("--sdk-size", type=_size, help="object read by the sdk (default 100 MB)")
    p.add_argument(
        "--only",
        type=_parts,
        help=f"comma-separated subset of {','.join(PARTS + OPTIONAL_PARTS)} (default: "
        f"{','.join(PARTS)}; provision only when named)",
    )
    p.add_argument(
        "--provision-rows",
        type=_counts,
        help="input rows of the provision part (default 100000,1000000,5000000)",
    )
    p.add_argument(
        "--provision-engines",
        type=_engines,
        help=f"engines of the provision part (default {','.join(PROVISION_ENGINES)})",
    )
    p.add_argument(
        "--smartnoise-python",
        help="the Python of an environment with smartnoise-synth: the provision part's "
        f"baseline (default ${SMARTNOISE_ENV}; without, the baseline reads 'not installed')",
    )
    p.add_argument(
        "--smartnoise-timeout",
        type=float,
        help="seconds before the baseline is stopped (default 900)",
    )
    p.add_argument("--repeat", type=int, default=1, help="submits and downloads each way (medians)")
    p.add_argument(
        "--nice",
        type=int,
        default=0,
        help="change the benchmark's scheduling priority, inherited by every process it "
        "starts (e.g. -10, as root, to rise above other load on a shared machine)",
    )
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke test (~20 s)")
    p.add_argument("--workdir", type=Path, help="parent of the temporary folder (same disk)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder and logs")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--json", type=Path, help="also write the rows, with raw values, here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    needs_tools = not args.only or {"submit", "output"} & set(args.only)
    missing = [tool for tool in ("tar", "gzip", "curl") if shutil.which(tool) is None]
    if needs_tools and missing:
        print(f"the baselines need {', '.join(missing)} on PATH", file=sys.stderr)
        return 2
    options = Options.quick_options() if args.quick else Options()
    if args.sizes:
        options.sizes = args.sizes
    if args.output_size:
        options.output_size = args.output_size
    if args.sdk_size:
        options.sdk_size = args.sdk_size
    if args.repeat < 1:
        parser().error("--repeat must be at least 1")
    options.repeat = args.repeat
    if args.only:
        options.parts = args.only
    if args.provision_rows:
        options.provision_rows = args.provision_rows
    if args.provision_engines:
        options.provision_engines = args.provision_engines
    if args.smartnoise_python:
        options.smartnoise_python = args.smartnoise_python
    if args.smartnoise_timeout:
        options.smartnoise_timeout = args.smartnoise_timeout
    options.workdir = args.workdir
    options.keep = args.keep

    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    if args.nice:
        os.nice(args.nice)
    report = run(options, log)
    print(report.heading())
    print(table(report.rows, markdown=args.markdown))
    if args.json:
        args.json.write_text(json.dumps(dataclasses.asdict(report), indent=1))
    missed = [r.figure for r in report.rows if r.met is False]
    if missed:
        print(f"targets missed: {'; '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
