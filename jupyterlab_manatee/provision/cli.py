"""``manatee-provision``: make the stage-1 (synthetic) file from the real table with MST.

    manatee-provision insurance.csv --domain insurance.domain.json --epsilon 3 \\
        --output data/insurance.csv.s1 [--report report.json] \\
        [--holdout test.csv --target charges] \\
        [--upload-s1 gs://stage1-bucket] [--upload-s2 gs://stage2-bucket]
    manatee-provision domain --category sex=female,male --integer age=18,30,45,65 ...

Exit status: 0 done, 1 an error (the message says what to change), 2 bad arguments,
130 interrupted (Ctrl-C; nothing is left half-written).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import secrets
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from . import aim
from .engines import DEFAULT_MEMORY_LIMIT, ENGINE_HELP, ENGINES, SPARK_MASTER_HELP
from .errors import ProvisionError
from .files import check_writable, destination, upload, write_whole

if TYPE_CHECKING:
    from .domain import TableDomain
    from .engines import Census, Engine

DEFAULT_DELTA = 1e-9

DESCRIPTION = """\
Make differentially private synthetic data (stage 1) from a real table (stage 2) with
MST (McKenna, Miklau, Sheldon 2021). The domain file fixes each column's categories or
numeric bins; write it from public knowledge, never from the data (to draft one:
manatee-provision domain --help). Numbers are drawn inside their bins with more decimals
than the input has, so no real decimal value is copied; whole numbers and categories can
repeat real values: what protects the data is differential privacy.

Before the run it prints a plan: the noise per measured marginal, in rows, against the
table's counts; it refuses a run whose noise swamps the counts (--force runs anyway).
Values outside a numeric column's edges are clipped into its end bins and counted on
the console; a column with more than 1% outside is refused unless --allow-clipping.

--method aim uses AIM (McKenna, Mullins, Sheldon, Miklau 2022) instead: adaptive rounds
that measure the marginals the model gets most wrong, under the same accounting.

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


def _delimiter(text: str) -> str:
    text = "\t" if text.lower() in ("tab", "\\t") else text
    if len(text) != 1 or text in '"\r\n':
        raise argparse.ArgumentTypeError(f"one character, or 'tab': {text!r}")
    return text


def parser() -> argparse.ArgumentParser:
    """The arguments of a provisioning run."""
    p = argparse.ArgumentParser(
        prog="manatee-provision",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "input",
        help="the real table: a CSV file with a header row, or a .parquet file; a path or "
        "gs://bucket/object",
    )
    p.add_argument(
        "--delimiter",
        type=_delimiter,
        default=",",
        help="the character between values (default ','; 'tab' for a tab)",
    )
    p.add_argument("--domain", type=Path, required=True, help="the domain file (JSON)")
    p.add_argument(
        "--output",
        type=Path,
        required=True,
        help="where to write the synthetic table: CSV, or Parquet if the name ends in .parquet",
    )
    p.add_argument("--epsilon", type=_positive_float, required=True, help="privacy budget")
    p.add_argument("--delta", type=_delta, default=DEFAULT_DELTA, help=f"default {DEFAULT_DELTA:g}")
    p.add_argument("--seed", type=_seed, default=None, help="for a reproducible run (keep secret)")
    p.add_argument("--rows", type=_positive_int, default=None, help="default: a noisy count")
    p.add_argument(
        "--iters", type=_positive_int, default=1000, help="estimation iterations (default 1000)"
    )
    p.add_argument(
        "--method",
        choices=("mst", "aim"),
        default="mst",
        help="the mechanism: mst (the default) or aim",
    )
    aim.add_arguments(p)
    p.add_argument("--report", type=Path, default=None, help="also write the report as JSON")
    p.add_argument(
        "--force",
        action="store_true",
        help="run even when the plan says the noise swamps the counts",
    )
    p.add_argument(
        "--allow-clipping",
        action="store_true",
        help="accept numeric columns with more than 1%% of their values outside the edges",
    )
    p.add_argument(
        "--holdout",
        default=None,
        help="real rows kept out of the input: the report scores a model trained on the "
        "output on them (not private; with --target)",
    )
    p.add_argument("--target", default=None, help="the column that model predicts")
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
    p.add_argument("--gcp-project", default=None, help="project for gs:// inputs and uploads")
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="duckdb",
        help=ENGINE_HELP,
    )
    p.add_argument(
        "--memory-limit",
        default=DEFAULT_MEMORY_LIMIT,
        help=f"DuckDB's memory for its own work, past which it spills to disk (default "
        f"{DEFAULT_MEMORY_LIMIT})",
    )
    p.add_argument(
        "--spark-master",
        default="local[*]",
        help=SPARK_MASTER_HELP,
    )
    p.add_argument(
        "--temp-dir",
        type=Path,
        default=None,
        help="where the engine spills and copies gs:// inputs (default: the system's temporary "
        "folder; removed at the end)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace existing output, report and uploads"
    )
    return p


def privacy_statement(epsilon: float, delta: float) -> str:
    """What the guarantee means, in plain words."""
    factor = math.exp(epsilon)
    return (
        f"what protects the real records: differential privacy with epsilon {epsilon:g} "
        f"and delta {delta:g}. Whether any one person's record is in the table or not "
        f"changes the chance of any output by at most a factor of {factor:.3g} (e^epsilon), "
        f"except with a probability of at most {delta:g}. Whole numbers and categories "
        "can equal real values by chance (there are few of them); that is expected."
    )


def summary(report: dict[str, Any]) -> str:
    """The report in a few lines of text."""
    privacy = report["privacy"]
    closeness = report["not_private"]["distances"]
    one, two = closeness["one_way"], closeness["two_way"]
    pairs = ", ".join("-".join(clique) for clique in report["selected_marginals"])
    noise = privacy.get("noise") or (
        f"1-way sigma {privacy['one_way']['sigma']:.3g}, "
        f"2-way sigma {privacy['two_way']['sigma']:.3g}"
    )
    lines = [
        f"{report['mechanism']}: {report['rows']['output']} rows in {report['seconds']} s",
        f"privacy spent: epsilon {privacy['epsilon_spent']:.4g}, delta {privacy['delta']:g} "
        f"(zCDP rho {privacy['rho_spent']:.4g}; {noise})",
        privacy_statement(privacy["epsilon_spent"], privacy["delta"]),
        f"marginals measured (beyond the 1-way): {pairs}",
        "not private, for the data owner only: total-variation distance to the real table, "
        f"1-way mean {one['mean']:.3f} (max {one['max']:.3f}), "
        f"2-way mean {two['mean']:.3f} (max {two['max']:.3f})",
    ]
    score = report["not_private"].get("utility")
    if score:
        lines.append(
            f"not private: a {score['model']} of {score['target']!r} scores {score['metric']} "
            f"{score['trained_on_output']:.3f} on the {score['holdout_rows']} held-out rows "
            f"when trained on the output ({score['trained_on_input']:.3f} when trained on "
            "the real input)"
        )
    return "\n".join(lines)


def clipping_lines(domain: TableDomain, census: Census) -> list[str]:
    """One line per numeric column with clipped values, and per column with empty values
    (not private: real counts)."""
    lines = []
    for column in domain.columns:
        counts = census.columns.get(column.name)
        if column.empty and counts is not None and counts.empty:
            lines.append(
                f"empty (not private): column {column.name!r}: {counts.empty} of "
                f"{census.rows} values empty, counted and synthesised as a value of their own"
            )
        if column.numeric and counts is not None and counts.clipped:
            lines.append(
                f"clipped (not private): column {column.name!r}: {counts.clipped} of "
                f"{census.rows - counts.empty} values outside [{float(column.edges[0]):g}, "
                f"{float(column.edges[-1]):g}) ({counts.below} below, {counts.above} above) "
                "put into the end bins"
            )
    return lines


def _is_gcs(location: str) -> bool:
    return location.startswith("gs://")


def _check_places(args: argparse.Namespace) -> str:
    """Refuse, before any work, outputs and uploads that cannot be written; returns the
    data name for the uploads."""
    if not _is_gcs(args.input) and args.output.resolve() == Path(args.input).resolve():
        raise ProvisionError("--output must not be the input file")
    if (args.holdout is None) != (args.target is None):
        raise ProvisionError("--holdout and --target go together: give both or neither")
    if args.upload_s2 and _is_gcs(args.input):
        raise ProvisionError("--upload-s2 puts a local input in place: this input is in gs://")
    for target in (args.output, args.report):
        if target is not None:
            # checked now, so a long run is not wasted (and again when writing)
            check_writable(target, overwrite=args.overwrite)
    name = args.name or PurePosixPath(args.input).name
    for location, source in ((args.upload_s1, args.output), (args.upload_s2, args.input)):
        if location:
            where = destination(location, name)
            if not _is_gcs(where) and Path(where).resolve() != Path(source).resolve():
                check_writable(Path(where), overwrite=args.overwrite)
    return name


def _engine_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"temp_root": args.temp_dir, "gcp_project": args.gcp_project}
    if args.engine == "spark":
        options["master"] = args.spark_master
    else:
        options["memory_limit"] = args.memory_limit
    return options


def _output_engine(args: argparse.Namespace, engine: Engine, stack: contextlib.ExitStack) -> Engine:
    """The engine that re-reads the written output for the report: the counting engine,
    except for Spark on a cluster, whose executors on other machines cannot read the file
    just written on this one; a local DuckDB (closed with ``stack``) reads it there."""
    from .engines import open_engine
    from .engines.sources import on_a_cluster

    if args.engine != "spark" or not on_a_cluster(args.spark_master):
        return engine
    return stack.enter_context(
        open_engine("duckdb", memory_limit=args.memory_limit, temp_root=args.temp_dir)
    )


def run(args: argparse.Namespace, say: Callable[[str], None] = print) -> None:
    """Provision as the arguments say, telling progress through ``say``.

    The real table is read only through an engine (counts, and pieces of typed columns
    for the report's model); the synthetic rows are written in pieces. The report re-reads
    them through `_output_engine`."""
    from .domain import MAX_CLIPPED_SHARE, load_domain
    from .engines import Source, open_engine
    from .engines.sql import one_and_two_way
    from .output import write_pieces
    from .plan import make_plan
    from .quality import distances, utility_of

    name = _check_places(args)
    domain = load_domain(args.domain)
    with contextlib.ExitStack() as stack:
        engine = stack.enter_context(open_engine(args.engine, **_engine_options(args)))
        table = engine.open(Source(args.input, delimiter=args.delimiter))
        share = None if args.allow_clipping else MAX_CLIPPED_SHARE
        census = domain.check(table, max_clipped_share=share)
        holdout = None
        if args.holdout is not None:
            if args.target not in domain.names:
                raise ProvisionError(f"--target {args.target!r} is not a column of the domain")
            holdout = engine.open(Source(args.holdout, delimiter=args.delimiter))
            try:
                domain.check(holdout, max_clipped_share=None)
            except ProvisionError as error:
                raise ProvisionError(f"the holdout {args.holdout}: {error}") from None
        planner = aim.make_plan if args.method == "aim" else make_plan
        plan = planner(domain, census.rows, args.epsilon, args.delta)
        for line in [*plan.lines(), *clipping_lines(domain, census)]:
            say(line)
        if plan.refused and not args.force:
            raise ProvisionError(
                "the noise swamps the counts of half the columns or more: the output would be "
                "mostly noise. Take the suggestion above, or pass --force to run anyway"
            )
        from .mst import fit

        seed = args.seed if args.seed is not None else secrets.randbits(63)
        started = time.monotonic()
        cliques = one_and_two_way(domain.names)
        if args.method == "aim":
            real = table.marginals(domain, aim.cliques(domain.names, args.aim_degree))
            model = aim.fit_from_args(real, domain, args, seed)
        else:
            real = table.marginals(domain, cliques)
            model = fit(
                real, domain, epsilon=args.epsilon, delta=args.delta, seed=seed, iters=args.iters
            )
        count = args.rows or model.estimated_rows
        write_pieces(args.output, domain, model.pieces(count), overwrite=args.overwrite)
        seconds = round(time.monotonic() - started, 2)
        say(f"wrote {args.output}")
        reader = _output_engine(args, engine, stack)
        output = reader.open(Source(str(args.output)))
        report = {
            **model.report,
            "rows": {"output": count},
            "seconds": seconds,
            "engine": engine.description,
            **({"output_engine": reader.description} if reader is not engine else {}),
            "seed": seed if args.seed is not None else "random, not recorded",
            "input": str(args.input),
            "domain": str(args.domain),
            "plan": {
                "sigma_one_way_rows": plan.sigma1,
                "sigma_two_way_rows": plan.sigma2,
                "swamped_columns": plan.swamped,
                "noisy_pairs": [list(pair) for pair in plan.noisy_pairs],
                "forced": bool(plan.refused and args.force),
            },
            # Everything below compares with the real table: not differentially private.
            "not_private": {
                "input_rows": census.rows,
                "clipped_values": {n: c.clipped for n, c in census.columns.items()},
                "empty_values": {n: c.empty for n, c in census.columns.items()},
                "distances": distances(domain, real, output.marginals(domain, cliques)),
            },
        }
        if holdout is not None:
            report["not_private"]["utility"] = utility_of(
                domain, table, output, holdout, args.target
            )
    say(summary(report))
    if args.report is not None:
        text = json.dumps(report, indent=2) + "\n"
        write_whole(args.report, lambda h: h.write(text), overwrite=args.overwrite, mode=0o600)
        say(f"report (not private) written to {args.report}")
    options = {"overwrite": args.overwrite, "gcp_project": args.gcp_project}
    if args.upload_s1:
        where = upload(args.output, args.upload_s1, name, **options)
        say(f"stage-1 file uploaded to {where}")
    if args.upload_s2:
        where = upload(Path(args.input), args.upload_s2, name, **options)
        say(f"stage-2 file uploaded to {where}")


def _say(line: str) -> None:
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit status."""
    from .files import interrupted_message, on_interrupt

    argv = sys.argv[1:] if argv is None else argv
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, on_interrupt)
    try:
        if argv[:1] == ["domain"]:
            from .draft import main as draft

            return draft(argv[1:])
        args = parser().parse_args(argv)
        run(args, _say)
    except KeyboardInterrupt:
        print(f"manatee-provision: {interrupted_message()}", file=sys.stderr)
        return 130
    except (ProvisionError, ValueError) as error:
        print(f"manatee-provision: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        where = f" {error.filename}" if error.filename else ""
        print(f"manatee-provision: error:{where}: {error.strerror or error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
