"""``manatee-provision domain --data --epsilon``: DP quantiles from the engine's counts,
the budget split as the notes say, and a warning for every draft that is not what it
seems (issue 28)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from jupyterlab_manatee.provision.draft import (
    Drafted,
    _crowded_bin,
    _noise_warning,
    draft,
    expected_rank_error,
    main,
    parse_spec,
    parser,
    quantile_cells,
)
from jupyterlab_manatee.provision.engines import Table, open_engine
from jupyterlab_manatee.provision.engines.sql import Cells
from jupyterlab_manatee.provision.errors import DomainError, MissingExtraError, ProvisionError

pytest.importorskip("opendp")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def engine() -> Iterator:
    with open_engine() as opened:
        yield opened


def table(engine, **columns: list[str]) -> Table:
    return engine.from_columns(list(columns), columns)


def spread(rows: int) -> list[str]:
    """``rows`` values spread evenly over [0, 100)."""
    return [f"{i * 100 / rows:.2f}" for i in range(rows)]


def drafted(engine, specs: list[str], epsilon: float, bins: int = 6, **columns) -> Drafted:
    if "s" not in columns:  # a domain needs two columns: a category beside
        specs = [*specs, "category:s=a,b"]
        columns["s"] = ["a"] * len(next(iter(columns.values())))
    kinds = [s.split(":", 1) for s in specs]
    parsed = [parse_spec(kind, text) for kind, text in kinds]
    return draft(parsed, bins=bins, table=table(engine, **columns), epsilon=epsilon)


# -- the noise warning -----------------------------------------------------------------------
def test_too_small_an_epsilon_for_the_rows_is_warned_with_what_would_do(engine):
    # 309 rows and epsilon 0.03 for the column: what 0.3 over 10 columns gave in issue 28
    result = drafted(engine, ["float:x=0..100"], epsilon=0.03, x=spread(309))
    assert result.warnings[0] == (
        "warning (not private): column 'x': epsilon 0.01 per quantile adds an expected rank "
        "error of 78 rows, over half the 52 rows a bin should hold (309 rows, 6 bins): the "
        "edges are close to random; use --epsilon 0.3 or more, or --bins 2, or public "
        "cut-offs (NAME=E1,E2,...)"
    )


def test_an_epsilon_that_fits_the_rows_is_not_warned(engine):
    result = drafted(engine, ["float:x=0..100"], epsilon=3.0, x=spread(309))
    assert not [w for w in result.warnings if "rank error" in w]


# -- merged edges ----------------------------------------------------------------------------
def test_quantiles_that_fall_on_one_edge_are_merged_and_warned(engine):
    # 0..3 has two inner whole-number edges: five quantiles cannot make six bins
    values = [str(i % 3) for i in range(3000)]
    result = drafted(engine, ["integer:n=0..3"], epsilon=30.0, n=values)
    assert result.document["columns"][0]["edges"] == [0, 1, 2, 3]
    assert result.warnings == [
        "warning: column 'n': 3 of its 5 DP quantiles fell on an edge already taken and were "
        "merged: 3 bins remain of the 6 asked for; use a larger --epsilon, or --bins 3"
    ]


def test_distinct_quantiles_are_not_warned(engine):
    result = drafted(engine, ["float:x=0..100"], epsilon=30.0, x=spread(10_000))
    assert len(result.document["columns"][0]["edges"]) == 7
    assert result.warnings == []


# -- a crowded bin ---------------------------------------------------------------------------
def test_a_bin_that_holds_almost_every_row_is_warned(engine):
    # 95% zeros: every quantile up to 0.95 is the edge just above 0
    values = ["0"] * 9500 + [str(1 + i % 99) for i in range(500)]
    result = drafted(engine, ["integer:n=0..100"], epsilon=30.0, n=values)
    edges = result.document["columns"][0]["edges"]
    assert edges[:2] == [0, 1]
    assert (
        "warning (not private): column 'n': the bin [0, 1) holds 95% of the 10000 rows, the "
        f"other {len(edges) - 2} bins almost none; use a larger --epsilon, or public cut-offs "
        "where the values crowd"
    ) in result.warnings


def test_bins_that_share_the_rows_are_not_warned_as_crowded(engine):
    result = drafted(engine, ["float:x=0..100"], epsilon=30.0, bins=3, x=spread(3000))
    assert not [w for w in result.warnings if "holds" in w]


# -- accuracy and the budget -----------------------------------------------------------------
def test_a_generous_epsilon_puts_the_edges_within_one_of_the_true_quantiles(engine):
    # 10,000 values 0.00..99.99 (quantiles 20, 40, 60, 80); epsilon 10 over 3 rounds: each
    # pick is off by more than (2 / 3.33) (ln 1024 + 16) = 14 rows (0.14) with a chance
    # under 1e-7; three rounds and a cell of 0.1 keep every edge within 1.0
    result = drafted(engine, ["float:x=0..100"], epsilon=10.0, bins=5, x=spread(10_000))
    edges = result.document["columns"][0]["edges"]
    assert edges[0] == 0 and edges[-1] == 100 and len(edges) == 6
    assert [abs(e - q) <= 1.0 for e, q in zip(edges[1:-1], (20, 40, 60, 80), strict=True)] == [
        True
    ] * 4


def test_the_budget_is_split_over_columns_then_rounds_as_the_notes_record(engine):
    specs = ["float:x=0..100", "integer:n=0..50", "float:y=0..100", "category:s=a,b"]
    values = spread(3000)
    result = drafted(
        engine, specs, epsilon=0.9, x=values, y=values, n=[str(i % 50) for i in range(3000)],
        s=["a"] * 3000,
    )  # fmt: skip
    # 0.9 over 3 bounded columns, 6 bins: 5 quantiles in 3 rounds (3, then 2 and 5, then 1, 4)
    assert {n: q.per_quantile for n, q in result.quantiles.items()} == pytest.approx(
        {"x": 0.1, "n": 0.1, "y": 0.1}
    )
    note = result.document["columns"][1]["note"]
    assert note.endswith(
        "(OpenDP's noisy max over 50 equal cells): epsilon 0.3 of 0.9 for this column, 0.1 "
        "per quantile in each of 3 rounds"
    )


def test_the_values_are_never_read_only_the_counts():
    # the engine no longer offers a column's values at all
    assert not hasattr(Table, "numbers")
    assert "histograms" in Table.__abstractmethods__


def test_drafting_a_large_table_takes_no_more_memory_than_a_small_one(tmp_path):
    # holding 2,000,000 values as Python floats (what OpenDP's quantile took) is 150 MiB more
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    for path, rows in ((small, 20_000), (large, 2_000_000)):
        path.write_text(
            "x,s\n" + "".join(f"{(i * 7919) % 10_000 / 100:.2f},a\n" for i in range(rows))
        )
    peaks = [peak_of_domain_command(path, tmp_path) for path in (small, large)]
    assert peaks[1] - peaks[0] < 64, peaks


def peak_of_domain_command(data: Path, folder: Path) -> float:
    """The peak resident memory (MiB) of one ``manatee-provision domain --data`` process."""
    code = (
        "import resource, sys; from jupyterlab_manatee.provision.cli import main; "
        "status = main(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024); sys.exit(status)"
    )
    result = subprocess.run(
        [
            sys.executable, "-c", code, "domain", "--output", str(folder / "d.json"),
            "--overwrite", "--data", str(data), "--epsilon", "1", "--float", "x=0..100",
            "--category", "s=a,b",
        ],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return float(result.stdout.strip().splitlines()[-1])


# -- the command -----------------------------------------------------------------------------
def test_the_command_prints_each_warning_on_one_line(tmp_path):
    data = tmp_path / "real.csv"
    data.write_text("x,n\n" + "".join(f"{v},{i % 3}\n" for i, v in enumerate(spread(309))))
    result = subprocess.run(
        [
            sys.executable, "-m", "jupyterlab_manatee.provision", "domain",
            "--output", str(tmp_path / "d.json"), "--data", str(data), "--epsilon", "0.06",
            "--float", "x=0..100", "--integer", "n=0..3",
        ],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning")]
    assert re.fullmatch(
        r"warning \(not private\): column 'x': epsilon 0\.01 per quantile .*", warnings[0]
    )
    assert "warning: column 'n': 3 of its 5 DP quantiles fell on an edge already taken" in (
        result.stdout
    )


WHOLE = "an integer column's edges must be whole numbers"


# -- the specs -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("category", "=a,b", "--category =a,b: expected NAME=VALUES"),
        ("category", "s=", "--category s=: expected NAME=VALUES"),
        ("category", "s", "--category s: expected NAME=VALUES"),
        ("float", "x=1,2:z", "--float x=1,2:z: the decimals after ':' must be a whole number"),
        ("float", "x=1,2:3:4", "--float x=1,2:3:4: '2:3' is not a number"),
        ("float", "x=0..1..2", "--float x=0..1..2: '1..2' is not a number"),
        ("integer", "n=5..5", "--integer n=5..5: LOW..HIGH needs LOW below HIGH"),
        ("integer", "n=x..5", "--integer n=x..5: 'x' is not a number"),
        ("integer", "n=0..y", "--integer n=0..y: 'y' is not a number"),
        ("integer", "n=0.5..5", f"--integer n=0.5..5: {WHOLE}"),
        ("integer", "n=0..5.5", f"--integer n=0..5.5: {WHOLE}"),
        ("integer", "n=1,z", "--integer n=1,z: 'z' is not a number"),
        ("integer", "n=1,2.5", f"--integer n=1,2.5: {WHOLE}"),
        ("float", "x=0..inf", "--float x=0..inf: 'inf' is not a finite number"),
    ],
)  # fmt: skip
def test_a_malformed_spec_is_refused_naming_its_flag_and_value(kind, text, message):
    with pytest.raises(DomainError) as refused:
        parse_spec(kind, text)
    assert str(refused.value) == message


def test_a_category_may_hold_an_equals_sign():
    spec = parse_spec("category", "bmi_class=<18.5,18.5-25,>=25")
    assert (spec.name, spec.categories) == ("bmi_class", ["<18.5", "18.5-25", ">=25"])


def test_an_integer_specs_edges_and_bounds_are_whole_numbers_in_the_file():
    edges, bounds = parse_spec("integer", "age=18,30"), parse_spec("integer", "n=0..5")
    assert json.dumps([edges.edges, bounds.bounds]) == "[[18, 30], [0, 5]]"


def test_a_float_specs_edges_keep_their_fractions_and_decimals():
    spec = parse_spec("float", "bmi=15,18.5:2")
    assert (spec.edges, spec.decimals) == ([15.0, 18.5], 2)


def test_equal_bins_of_an_integer_column_are_rounded_to_whole_numbers():
    document = draft([parse_spec("integer", "n=0..10"), parse_spec("float", "x=0..1")], bins=4)
    # 0, 2.5, 5, 7.5, 10 rounded half to even
    assert json.dumps([c["edges"] for c in document.document["columns"]]) == (
        "[[0, 2, 5, 8, 10], [0.0, 0.25, 0.5, 0.75, 1.0]]"
    )


# -- the drafted document --------------------------------------------------------------------
def test_each_column_notes_where_its_bins_came_from():
    specs = [
        parse_spec("category", "s=a,b"),
        parse_spec("integer", "age=18,30"),
        parse_spec("float", "x=0..1"),
    ]
    document = draft(specs, bins=2).document
    assert document == {
        "description": "Drafted by manatee-provision domain from public facts.",
        "columns": [
            {
                "name": "s", "type": "category", "categories": ["a", "b"],
                "note": "categories given on the command line (public facts)",
            },
            {
                "name": "age", "type": "integer", "edges": [18, 30],
                "note": "edges given on the command line (public cut-offs)",
            },
            {
                "name": "x", "type": "float", "edges": [0.0, 0.5, 1.0],
                "note": "bounds (0.0, 1.0) given on the command line, equal bins",
                "decimals": 4,
            },
        ],
    }  # fmt: skip


def test_the_description_says_what_the_dp_quantiles_spent(engine):
    result = drafted(engine, ["integer:n=0..2"], epsilon=0.5, bins=2, n=["0", "1"] * 50)
    assert result.document["description"] == (
        "Drafted by manatee-provision domain from public facts. Some edges are DP quantiles "
        "of the data: they spent epsilon 0.5 (pure DP) of the data's privacy budget; the "
        "synthesis adds its own epsilon to it."
    )


def test_a_column_that_may_be_empty_is_drafted_so(engine):
    spec = parse_spec("integer", "n=0..2")
    spec.empty = True
    document = draft([spec, parse_spec("category", "s=a,b")], bins=2).document
    assert document["columns"][0]["empty"] is True
    assert "empty" not in document["columns"][1]


def test_a_column_not_in_the_data_is_refused_by_name(engine):
    specs = [parse_spec("integer", "n=0..2"), parse_spec("category", "s=a,b")]
    with pytest.raises(ProvisionError) as refused:
        draft(specs, table=table(engine, n=["1"], t=["a"]), epsilon=1.0)
    assert str(refused.value) == "columns not in --data: ['s']"


def test_data_without_an_epsilon_only_checks_the_columns(engine):
    specs = [parse_spec("integer", "n=0..10"), parse_spec("category", "s=a,b")]
    result = draft(specs, bins=2, table=table(engine, n=["1"], s=["a"]), epsilon=None)
    assert result.document["columns"][0]["edges"] == [0, 5, 10]
    assert result.quantiles == {}


def test_data_with_no_bounded_column_spends_nothing(engine):
    specs = [parse_spec("integer", "n=0,5,10"), parse_spec("category", "s=a,b")]
    result = draft(specs, table=table(engine, n=["1"], s=["a"]), epsilon=1.0)
    assert result.quantiles == {}
    assert result.document["description"] == (
        "Drafted by manatee-provision domain from public facts."
    )


# -- the cells and the DP quantiles ----------------------------------------------------------
def test_an_integer_columns_cells_are_whole_numbers_wide(engine):
    # 5,000 between the bounds: 1,000 cells 5 wide, so every edge is 1000 + 5 k
    values = [str(1000 + i) for i in range(5000)]
    result = drafted(engine, ["integer:n=1000..6000"], epsilon=30.0, bins=4, n=values)
    column = result.document["columns"][0]
    assert "(OpenDP's noisy max over 1000 equal cells)" in column["note"]
    assert [(e - 1000) % 5 for e in column["edges"]] == [0] * 5


def test_an_integer_columns_drafted_edges_are_whole_numbers_in_the_file(engine):
    values = [str(i % 4) for i in range(4000)]
    result = drafted(engine, ["integer:n=0..4"], epsilon=30.0, bins=4, n=values)
    assert json.dumps(result.document["columns"][0]["edges"]) == "[0, 1, 2, 3, 4]"


def test_the_median_of_an_even_spread_is_the_cell_boundary_at_its_middle(engine):
    # 100.00 .. 199.99: 5,000 values below 150; the 1,024 cells of 100..200 have a
    # boundary at 150 exactly (cell 512), and the next ones (149.902, 150.098) are 9 rows
    # off, 18 in score: at epsilon 30 a miss has a chance under exp(-100)
    values = [f"{100 + i / 100:.2f}" for i in range(10_000)]
    result = drafted(engine, ["float:x=100..200"], epsilon=30.0, bins=2, x=values)
    assert result.document["columns"][0]["edges"] == [100.0, 150.0, 200.0]


def test_each_pick_is_as_noisy_as_its_share_of_epsilon():
    """Four bins take two rounds: the middle quantile is picked at epsilon / 2 with
    sensitivity 2, by OpenDP's noisy max: exponential noise of scale 2 * 2 / (epsilon / 2).
    Here one boundary scores 0 and the 50 others 40 (all 20 rows on one side); at epsilon
    ln(50) / 5 the noise scale is 40 / ln(50), so the middle one wins with chance
    (1 - (1 - 1/50) ** 51) / (51 / 50) = 0.63: in 100 picks between 40 and 90 times, but
    for a chance of 1e-6. Twice the epsilon (or a noise taken as monotonic) wins 99 in
    100; three times the sensitivity, 7."""
    counts = np.array([0] * 25 + [10, 10] + [0] * 25)
    epsilon = math.log(50) / 5
    wins = sum(quantile_cells(counts, 4, epsilon)[1] == 26 for _ in range(100))
    assert 40 <= wins <= 90, wins


def test_a_float_edge_is_written_in_six_significant_digits(engine):
    # 10,000 values 0.00..99.99 in cells 0.09765625 wide; the 2/3 quantile's best boundary
    # is 683 (66.69921875, 10 in score against 17 next), then the lower part's median 341
    # (33.30078125, 8 against 10): at epsilon 15 a pick, a miss has a chance under 1e-6
    result = drafted(engine, ["float:x=0..100"], epsilon=30.0, bins=3, x=spread(10_000))
    assert result.document["columns"][0]["edges"] == [0.0, 33.3008, 66.6992, 100.0]


def test_a_range_narrow_beside_its_size_keeps_its_dp_edges_apart(engine):
    # six significant digits would round every boundary of 1000000..1000001 onto a bound
    values = [f"{1_000_000 + i / 10_000:.4f}" for i in range(10_000)]
    result = drafted(engine, ["float:x=1000000..1000001"], epsilon=30.0, bins=2, x=values)
    assert result.document["columns"][0]["edges"] == [1_000_000.0, 1_000_000.5, 1_000_001.0]
    assert result.warnings == []


def test_a_boundary_is_written_in_the_fewest_digits_within_a_hundredth_of_a_cell(engine):
    # the cells of 100000..100007 are 0.0068359375 wide; the boundaries picked (683, then
    # 341, as in the test above) are 100004.6689453125 and 100002.3310546875: nine digits
    # are the fewest within 0.000068
    values = [f"{100_000 + i * 0.0007:.4f}" for i in range(10_000)]
    result = drafted(engine, ["float:x=100000..100007"], epsilon=30.0, bins=3, x=values)
    edges = result.document["columns"][0]["edges"]
    assert edges == [100_000.0, 100_002.331, 100_004.669, 100_007.0]


def test_drafting_turns_on_opendps_contrib_features_itself(engine):
    import opendp.prelude as dp

    dp.disable_features("contrib")
    result = drafted(engine, ["integer:n=0..2"], epsilon=1.0, bins=2, n=["0", "1"])
    assert result.document["columns"][0]["edges"] == [0, 1, 2]


def test_drafting_from_the_data_without_opendp_says_what_to_install(engine, monkeypatch):
    monkeypatch.setitem(sys.modules, "opendp.prelude", None)
    with pytest.raises(MissingExtraError) as refused:
        drafted(engine, ["integer:n=0..2"], epsilon=1.0, n=["0", "1"])
    assert str(refused.value) == (
        "drafting edges from the data needs OpenDP: pip install 'jupyterlab_manatee[provision]'"
    )


def test_empty_cells_of_a_column_that_may_not_be_empty_are_refused(engine):
    with pytest.raises(ProvisionError) as refused:
        drafted(engine, ["integer:n=0..2"], epsilon=1.0, n=["0", "", "1", " "])
    assert str(refused.value) == (
        "column 'n' of --data holds 2 empty value(s) and 0 text(s) that are not numbers: "
        "only numbers can be binned"
    )


def test_texts_that_are_not_numbers_are_refused(engine):
    with pytest.raises(ProvisionError) as refused:
        drafted(engine, ["integer:n=0..2"], epsilon=1.0, n=["0", "one", "1"])
    assert str(refused.value) == (
        "column 'n' of --data holds 0 empty value(s) and 1 text(s) that are not numbers: "
        "only numbers can be binned"
    )


def test_the_quantiles_of_a_column_that_may_be_empty_are_those_of_its_numbers(engine):
    spec = parse_spec("integer", "n=0..2")
    spec.empty = True
    data = table(engine, n=["0"] * 10 + ["1"] * 10 + [""] * 30, s=["a"] * 50)
    result = draft([spec, parse_spec("category", "s=a,b")], bins=2, table=data, epsilon=30.0)
    assert result.document["columns"][0]["edges"] == [0, 1, 2]
    assert result.warnings == []


# -- the expected rank error and the noise warning -------------------------------------------
def test_the_expected_rank_error_is_the_worst_quantiles():
    # bins 3, epsilon (8/3) ln 2 over 2 rounds: the weights halve per row of error. The 1/3
    # quantile's errors are 1, 2, 3 rows (weights 1, 1/2, 1/4): 2.75 / 1.75 - 1 = 4/7 of a
    # row beyond the best; the 2/3 quantile's 1, 0, 1 (weights 1/2, 1, 1/2): 1/2
    error = expected_rank_error(np.array([3, 1, 1, 1]), 3, 8 / 3 * math.log(2))
    assert error == pytest.approx(4 / 7)


def test_a_single_boundary_far_from_the_quantile_expects_no_error_beyond_its_own():
    assert expected_rank_error(np.array([6000, 4000]), 2, 1.0) == 0.0


def test_the_expected_rank_error_is_found_far_from_every_boundary_too():
    # boundaries 1000 and 1001 rows off the median; at epsilon ln 3 the second weighs 1/3
    # of the first: 1/4 of a row expected beyond the best (without the weights underflowing)
    assert expected_rank_error(np.array([6000, 1, 3999]), 2, math.log(3)) == pytest.approx(0.25)


def test_an_expected_error_of_exactly_half_a_bin_is_not_warned():
    # two rows, two bins: half a bin is half a row; at a negligible epsilon both boundaries
    # weigh alike, with errors 0 and 1: exactly 1/2 expected
    assert _noise_warning("x", np.array([1, 1, 0]), 2, 1e-20, 1e-20) is None


def test_even_a_single_row_is_warned_when_the_noise_swamps_it(engine):
    result = drafted(engine, ["float:x=0..100"], epsilon=0.01, x=["50"])
    assert result.warnings[0].startswith(
        "warning (not private): column 'x': epsilon 0.00333 per quantile adds an expected "
        "rank error of 0 rows, over half the 0 rows a bin should hold (1 rows, 6 bins)"
    )


def test_when_no_epsilon_nor_fewer_bins_would_do_only_public_cut_offs_are_advised(engine):
    # half the rows in the first cell, half in the second: every boundary but one is off
    # by half the rows, whatever the bins
    result = drafted(engine, ["float:x=0..100"], epsilon=1e-9, x=["0.01", "0.1"] * 150)
    assert result.warnings[0].endswith(
        "the edges are close to random; use public cut-offs (NAME=E1,E2,...)"
    )


def test_the_noise_warning_advises_the_most_bins_that_would_do(engine):
    result = drafted(engine, ["float:x=0..100"], epsilon=0.045, x=spread(1000))
    assert ", or --bins 5, or public cut-offs" in result.warnings[0]


# -- merged and crowded bins -----------------------------------------------------------------
def test_a_single_merged_quantile_is_warned(engine):
    # 0..2 has one inner whole-number edge: the two quantiles of three bins both take it
    result = drafted(engine, ["integer:n=0..2"], epsilon=30.0, bins=3, n=["0", "1"] * 50)
    assert result.document["columns"][0]["edges"] == [0, 1, 2]
    assert result.warnings == [
        "warning: column 'n': 1 of its 2 DP quantiles fell on an edge already taken and were "
        "merged: 2 bins remain of the 3 asked for; use a larger --epsilon, or --bins 2"
    ]


def test_one_of_two_bins_holding_almost_every_row_is_warned(engine):
    values = ["0"] * 95 + ["1"] * 5
    result = drafted(engine, ["integer:n=0..3"], epsilon=30.0, bins=2, n=values)
    assert result.document["columns"][0]["edges"] == [0, 1, 3]
    assert result.warnings == [
        "warning (not private): column 'n': the bin [0, 1) holds 95% of the 100 rows, the "
        "other 1 bins almost none; use a larger --epsilon, or public cut-offs where the "
        "values crowd"
    ]


def test_a_crowded_last_bin_is_named_by_its_edges(engine):
    # the median's best boundary is 2 (5 rows below), by 4 in score over 1 (3 below)
    values = ["0"] * 3 + ["1"] * 2 + ["2"] * 95
    result = drafted(engine, ["integer:n=0..3"], epsilon=30.0, bins=2, n=values)
    assert result.document["columns"][0]["edges"] == [0, 2, 3]
    assert result.warnings == [
        "warning (not private): column 'n': the bin [2, 3) holds 95% of the 100 rows, the "
        "other 1 bins almost none; use a larger --epsilon, or public cut-offs where the "
        "values crowd"
    ]


def test_a_single_row_is_a_crowded_bin(engine):
    result = drafted(engine, ["integer:n=0..3"], epsilon=1.0, bins=3, n=["1"])
    assert [w for w in result.warnings if "holds 100% of the 1 rows" in w] != []


def test_bounds_one_whole_number_apart_draft_one_bin_without_noise(engine):
    # 0..1 is a single cell: no boundary to pick, so no noise either (even for two rows)
    result = drafted(engine, ["integer:n=0..1"], epsilon=0.01, bins=2, n=["0", "1"])
    assert result.document["columns"][0]["edges"] == [0, 1]
    assert [w for w in result.warnings if "rank error" in w] == []


def test_a_column_left_with_a_single_bin_is_warned_only_of_the_merge(engine):
    # not crowded (one bin holds every row by definition), and not told to use --bins 1
    result = drafted(engine, ["integer:n=0..1"], epsilon=30.0, bins=2, n=["0", "1"] * 5)
    assert result.warnings == [
        "warning: column 'n': 1 of its 1 DP quantiles fell on an edge already taken and were "
        "merged: 1 bins remain of the 2 asked for; use wider bounds or public cut-offs "
        "(NAME=E1,E2,...)"
    ]


def test_exactly_nine_tenths_of_the_rows_in_one_bin_is_not_warned():
    cells = Cells("n", 0, 1, 2)
    assert _crowded_bin(parse_spec("integer", "n=0..2"), cells, np.array([9, 1]), [0, 1, 2]) is None


def test_each_cell_counts_in_the_bin_that_holds_it():
    # edges 0, 1, 2, 3: 50, 45 and 5 rows, none crowded (a cell counted one bin lower
    # would make the first hold 95%)
    cells = Cells("n", 0, 1, 3)
    spec = parse_spec("integer", "n=0..3")
    assert _crowded_bin(spec, cells, np.array([50, 45, 5]), [0, 1, 2, 3]) is None


# -- the command, run in this process --------------------------------------------------------
def test_the_command_writes_the_drafted_document_and_says_so(tmp_path, capsys):
    out = tmp_path / "d.json"
    status = main(
        [
            "--output", str(out), "--integer", "age=18,30", "--category", "s=a,b",
            "--float", "x=0..1:1", "--bins", "2", "--may-be-empty", " x, ,s",
        ]
    )  # fmt: skip
    assert status == 0
    assert out.read_text() == (
        "{\n"
        '  "description": "Drafted by manatee-provision domain from public facts.",\n'
        '  "columns": [\n'
        "    {\n"
        '      "name": "age",\n'
        '      "type": "integer",\n'
        '      "edges": [\n        18,\n        30\n      ],\n'
        '      "note": "edges given on the command line (public cut-offs)"\n'
        "    },\n"
        "    {\n"
        '      "name": "s",\n'
        '      "type": "category",\n'
        '      "categories": [\n        "a",\n        "b"\n      ],\n'
        '      "note": "categories given on the command line (public facts)",\n'
        '      "empty": true\n'
        "    },\n"
        "    {\n"
        '      "name": "x",\n'
        '      "type": "float",\n'
        '      "edges": [\n        0.0,\n        0.5,\n        1.0\n      ],\n'
        '      "note": "bounds (0.0, 1.0) given on the command line, equal bins",\n'
        '      "decimals": 1,\n'
        '      "empty": true\n'
        "    }\n"
        "  ]\n"
        "}\n"
    )
    assert capsys.readouterr().out == (
        f"wrote {out}: 3 columns\n"
        "read the notes, fix what public facts say better, then run manatee-provision\n"
    )


def test_the_command_drafts_from_tab_separated_data_and_states_the_budget(tmp_path, capsys):
    data = tmp_path / "real.tsv"
    data.write_text("n\ts\n" + "0\ta\n1\ta\n" * 50)
    out = tmp_path / "d.json"
    status = main(
        [
            "--output", str(out), "--data", str(data), "--delimiter", "tab",
            "--epsilon", "0.5", "--integer", "n=0..2", "--category", "s=a,b", "--bins", "3",
        ]
    )  # fmt: skip
    assert status == 0
    assert json.loads(out.read_text())["columns"][0]["edges"] == [0, 1, 2]
    assert capsys.readouterr().out.splitlines() == [
        f"wrote {out}: 2 columns",
        "the DP quantiles spent epsilon 0.5 of the data's budget: the total is this plus the "
        "synthesis's --epsilon (e.g. 0.5 + 3 = 3.5)",
        "warning: column 'n': 1 of its 2 DP quantiles fell on an edge already taken and were "
        "merged: 2 bins remain of the 3 asked for; use a larger --epsilon, or --bins 2",
        "read the notes, fix what public facts say better, then run manatee-provision",
    ]


def test_the_command_reads_data_with_the_delimiter_given(tmp_path, capsys):
    data = tmp_path / "real.csv"
    data.write_text("n;s\n" + "0;a\n1;b\n" * 5)
    status = main(
        [
            "--output", str(tmp_path / "d.json"), "--data", str(data), "--delimiter", ";",
            "--epsilon", "1", "--integer", "n=0,1,2", "--category", "s=a,b",
        ]
    )  # fmt: skip
    assert status == 0
    assert "the DP quantiles spent" not in capsys.readouterr().out  # no bounds, no quantiles


def test_the_command_replaces_a_file_only_when_told(tmp_path, capsys):
    out = tmp_path / "d.json"
    out.write_text("old")
    argv = ["--output", str(out), "--integer", "n=0,1", "--category", "s=a,b"]
    with pytest.raises(ProvisionError, match="exists; pass --overwrite to replace it"):
        main(argv)
    assert main([*argv, "--overwrite"]) == 0
    assert json.loads(out.read_text())["columns"][0]["edges"] == [0, 1]


def test_two_bins_and_a_small_epsilon_are_accepted(tmp_path, capsys):
    data = tmp_path / "real.csv"
    data.write_text("n,s\n0,a\n")
    out = tmp_path / "d.json"
    argv = ["--output", str(out), "--integer", "n=0,1", "--category", "s=a,b", "--bins", "2"]
    assert main([*argv, "--data", str(data), "--epsilon", "0.5"]) == 0


TOGETHER = "--data and --epsilon go together: give both or neither"
POSITIVE = "--epsilon must be a positive number"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "give the columns: --category, --integer or --float NAME=..."),
        (["--integer", "n=0..9", "--bins", "1"], "--bins must be at least 2"),
        (["--integer", "n=0..9", "--data", "x.csv"], TOGETHER),
        (["--integer", "n=0..9", "--epsilon", "1"], TOGETHER),
        (["--integer", "n=0..9", "--data", "x.csv", "--epsilon", "0"], POSITIVE),
        (["--integer", "n=0..9", "--data", "x.csv", "--epsilon", "-1"], POSITIVE),
        (["--integer", "n=0..9", "--data", "x.csv", "--epsilon", "inf"], POSITIVE),
        (
            ["--integer", "n=0..9", "--may-be-empty", "zz,aa"],
            "--may-be-empty names no column given: ['aa', 'zz']",
        ),
    ],
)  # fmt: skip
def test_the_command_refuses_what_cannot_be_drafted(tmp_path, arguments, message):
    with pytest.raises(ProvisionError) as refused:
        main(["--output", str(tmp_path / "d.json"), *arguments])
    assert str(refused.value) == message
    assert not (tmp_path / "d.json").exists()


def test_the_command_needs_an_output(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--integer", "n=0,1", "--category", "s=a,b"])
    assert stopped.value.code == 2
    assert "the following arguments are required: --output" in capsys.readouterr().err


def test_the_commands_help_describes_every_option(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    text = parser().format_help()
    assert text.startswith(
        "usage: manatee-provision domain [-h] [--category category] [--integer integer]\n"
    )
    # the description keeps its own line breaks
    assert "\n    manatee-provision domain --output diabetes.domain.json \\\n" in text
    assert text[text.index("options:") :] == (
        "options:\n"
        "  -h, --help            show this help message and exit\n"
        "  --category category   a category column: NAME=A,B,C\n"
        "  --integer integer     an integer column: NAME=E1,E2,... (edges) or\n"
        "                        NAME=LOW..HIGH (bounds)\n"
        "  --float float         a decimal column, alike, with an optional :DECIMALS at\n"
        "                        the end\n"
        "  --may-be-empty NAME[,NAME]\n"
        "                        columns whose cells may be empty: an empty cell is\n"
        "                        then a value of its own\n"
        "  --bins BINS           bins for LOW..HIGH columns\n"
        "  --data DATA           the real table (CSV, .parquet, gs://), for DP\n"
        "                        quantiles\n"
        "  --delimiter DELIMITER\n"
        "                        the data's delimiter (default ',')\n"
        "  --epsilon EPSILON     budget for the DP quantiles\n"
        "  --engine {duckdb,spark}\n"
        "                        what reads the table: duckdb (embedded, the default)\n"
        "                        or spark\n"
        "  --spark-master SPARK_MASTER\n"
        "                        the Spark master for --engine spark (default\n"
        "                        local[*]); on a cluster (a master not local...) Spark\n"
        "                        reads a gs:// input itself: Dataproc has Google's\n"
        "                        Cloud Storage connector, any other cluster needs it\n"
        "                        (spark.jars)\n"
        "  --output OUTPUT       where to write the domain file\n"
        "  --overwrite           replace an existing file\n"
    )
