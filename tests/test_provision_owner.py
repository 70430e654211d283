"""manatee-provision for a data owner who has never seen it (issue 18), without the heavy
libraries: one error for all of a table's problems, the plan before the run, clipping,
the split of merged bins, the utility score, the domain drafts, and the command's errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jupyterlab_manatee.provision import InputError, TableDomain, load_domain, parse_domain
from jupyterlab_manatee.provision.draft import draft, parse_spec
from jupyterlab_manatee.provision.engines import open_engine
from jupyterlab_manatee.provision.mst import split_weights
from jupyterlab_manatee.provision.plan import make_plan
from jupyterlab_manatee.provision.quality import utility

REPO = Path(__file__).resolve().parent.parent
INSURANCE_DOMAIN = REPO / "tutorials" / "data" / "insurance.domain.json"
STAGE2 = REPO / "examples-data" / "stage2" / "data" / "insurance.csv.s2"
DIABETES_DOMAIN = REPO / "examples-data" / "diabetes" / "diabetes.domain.json"


def three_columns() -> TableDomain:
    return parse_domain(
        {
            "columns": [
                {"name": "sex", "type": "category", "categories": ["f", "m"]},
                {"name": "age", "type": "integer", "edges": [18, 40, 65]},
                {"name": "bp", "type": "float", "edges": [50, 100, 140], "decimals": 2},
            ]
        }
    )


# -- one error for every column's problems -------------------------------------------------
def test_one_error_lists_the_problems_of_every_column():
    rows = {"sex": ["f", "x", "m"], "age": ["30", "41.5", "abc"], "bp": ["80.25", "90", "95"]}
    with pytest.raises(InputError) as caught:
        three_columns().encode(["sex", "age", "bp"], rows)
    message = str(caught.value)
    assert "column 'sex': values not among the domain's categories ['f', 'm']: 'x'" in message
    assert "column 'age': text that is not a number: 'abc'" in message
    assert "column 'age': non-whole numbers in an integer column: '41.5'" in message
    assert "column 'bp': values with up to 2 decimals" in message
    assert 'set "decimals" to at least 3' in message


def test_a_missing_column_and_the_other_columns_problems_come_in_one_error():
    with pytest.raises(InputError) as caught:
        three_columns().encode(["sex", "age"], {"sex": ["x"], "age": ["abc"]})
    assert str(caught.value) == (
        "the input does not fit the domain; fix these, then run again:\n"
        "  - the columns do not match: missing from the input: ['bp']\n"
        "  - column 'sex': values not among the domain's categories ['f', 'm']: 'x'\n"
        "  - column 'age': text that is not a number: 'abc'"
    )


def test_an_integer_column_accepts_a_whole_number_written_with_a_decimal_point():
    codes, _ = three_columns().encode(
        ["sex", "age", "bp"],
        {"sex": ["f", "m"], "age": ["82.0", "19.00"], "bp": ["80", "99"]},
        max_clipped_share=None,
    )
    assert codes["age"].tolist() == [1, 0]


def test_trailing_zeros_do_not_count_as_decimals():
    codes, _ = three_columns().encode(
        ["sex", "age", "bp"], {"sex": ["f", "m"], "age": ["20", "50"], "bp": ["82.0", "101.50"]}
    )
    assert codes["bp"].tolist() == [0, 1]


def test_the_decimals_advice_never_goes_past_the_limit_of_12():
    with pytest.raises(InputError) as caught:
        three_columns().encode(
            ["sex", "age", "bp"], {"sex": ["f"], "age": ["20"], "bp": ["80.123456789012"]}
        )
    assert "round the input to at most 11 decimals" in str(caught.value)
    assert "at least 13" not in str(caught.value)


def test_a_column_mostly_outside_its_edges_is_refused_with_the_counts_and_a_way_out():
    kpa = {"sex": ["f"] * 4, "age": ["30"] * 4, "bp": ["12.5", "13.1", "11.9", "80"]}
    with pytest.raises(InputError) as caught:
        three_columns().encode(["sex", "age", "bp"], kpa)
    assert "column 'bp': 3 of 4 values (75%) lie outside [50, 140) (3 below, 0 above)" in str(
        caught.value
    )
    assert "check the units and the edges, or pass --allow-clipping" in str(caught.value)


def test_one_percent_outside_the_edges_is_accepted():
    ages = ["30"] * 99 + ["99"]
    _, clipped = three_columns().encode(
        ["sex", "age", "bp"], {"sex": ["f"] * 100, "age": ages, "bp": ["80"] * 100}
    )
    assert clipped == {"sex": 0, "age": 1, "bp": 0}


# -- empty values ----------------------------------------------------------------------------
def test_a_domain_without_the_empty_key_keeps_its_bins_and_may_not_be_empty():
    column = three_columns().column("age")
    assert (column.empty, column.bins, column.size) == (False, 2, 2)


def test_an_empty_cell_of_a_column_that_may_be_empty_is_the_bin_after_the_others():
    domain = parse_domain(
        {
            "columns": [
                {"name": "sex", "type": "category", "categories": ["f", "m"], "empty": True},
                {"name": "age", "type": "integer", "edges": [18, 40, 65], "empty": True},
                {"name": "bp", "type": "float", "edges": [50, 100, 140], "decimals": 2},
            ]
        }
    )
    assert [c.size for c in domain.columns] == [3, 3, 2]
    codes, _ = domain.encode(
        ["sex", "age", "bp"],
        {"sex": ["f", "", "m", " "], "age": ["", "20", "   ", "50"], "bp": ["60"] * 4},
    )
    assert codes["sex"].tolist() == [0, 2, 1, 2]
    assert codes["age"].tolist() == [2, 0, 2, 1]


def test_an_empty_cell_is_refused_where_the_domain_does_not_allow_it():
    with pytest.raises(InputError) as caught:
        three_columns().encode(["sex", "age", "bp"], {"sex": ["f"], "age": [""], "bp": ["60"]})
    assert "column 'age': 1 empty value(s): fill or drop them first, or allow them with " + (
        '"empty": true in the domain file'
    ) in str(caught.value)


def test_the_empty_bin_draws_an_empty_value_and_the_others_draw_as_before():
    column = parse_domain(
        {
            "columns": [
                {"name": "bp", "type": "float", "edges": [50, 100], "decimals": 1, "empty": True},
                {"name": "s", "type": "category", "categories": ["a"], "empty": True},
            ]
        }
    ).column("bp")
    plain = parse_domain(
        {"columns": [{"name": "bp", "type": "float", "edges": [50, 100], "decimals": 1},
                     {"name": "s", "type": "category", "categories": ["a"]}]}
    ).column("bp")  # fmt: skip
    with_empties = column.decode(np.array([0, 1, 0, 1]), np.random.default_rng(3))
    without = plain.decode(np.array([0, 0]), np.random.default_rng(3))
    assert with_empties[1] == with_empties[3] == ""
    assert [with_empties[0], with_empties[2]] == without


def test_the_clipped_share_of_a_column_counts_only_the_values_that_are_there():
    domain = parse_domain(
        {
            "columns": [
                {"name": "sex", "type": "category", "categories": ["f", "m"]},
                {"name": "age", "type": "integer", "edges": [18, 40, 65], "empty": True},
            ]
        }
    )
    with pytest.raises(InputError, match=r"1 of 2 values \(50%\) lie outside \[18, 65\)"):
        domain.encode(["sex", "age"], {"sex": ["f"] * 4, "age": ["", "", "20", "99"]})


def test_an_empty_number_is_an_indicator_feature_of_the_linear_model():
    domain = parse_domain(
        {
            "columns": [
                {"name": "x", "type": "integer", "edges": [0, 100], "empty": True},
                {"name": "g", "type": "category", "categories": ["a", "b"]},
                {"name": "y", "type": "float", "edges": [0, 1000], "decimals": 1, "empty": True},
            ]
        }
    )
    # y = 2x + 1, and 50 where x is empty; rows whose y is empty are left out
    real = {"x": ["1", "2", "3", "", "", "4"], "g": ["a"] * 6, "y": ["3", "5", "7", "50", "50", ""]}
    holdout = {"x": ["5", "", "6"], "g": ["a", "b", "a"], "y": ["11", "50", ""]}
    score = utility(domain, real, real, holdout, "y")
    assert score["holdout_rows"] == 2
    assert score["trained_on_input"] == pytest.approx(1.0, abs=1e-4)


def test_a_synthetic_table_with_empty_values_reads_them_as_missing():
    from jupyterlab_manatee.provision.mst import Synthesis

    domain = parse_domain(
        {
            "columns": [
                {"name": "n", "type": "integer", "edges": [0, 10], "empty": True},
                {"name": "f", "type": "float", "edges": [0, 1], "decimals": 2, "empty": True},
                {"name": "c", "type": "category", "categories": ["a"], "empty": True},
            ]
        }
    )
    frame = Synthesis(domain, {"n": ["3", ""], "f": ["", "0.25"], "c": ["", "a"]}).frame()
    assert [str(frame.dtypes[n]) for n in ("n", "f")] == ["Int64", "float64"]
    assert frame.isna().values.tolist() == [[False, True, True], [True, False, False]]


# -- the plan ------------------------------------------------------------------------------
def test_the_plan_gives_the_noise_per_marginal_in_rows():
    plan = make_plan(load_domain(INSURANCE_DOMAIN), 1338, 3.0, 1e-9)
    assert plan.sigma1 == pytest.approx(9.3315, abs=1e-3)
    assert plan.sigma2 == pytest.approx(8.6393, abs=1e-3)
    assert "9.33 rows per bin" in plan.lines()[1] and "8.64 rows per cell" in plan.lines()[1]


def test_the_plan_has_no_warning_for_the_insurance_table_at_epsilon_3():
    plan = make_plan(load_domain(INSURANCE_DOMAIN), 1338, 3.0, 1e-9)
    assert (plan.swamped, plan.noisy_pairs, plan.refused) == ([], [], False)
    assert len(plan.lines()) == 2


def test_the_plan_refuses_a_small_table_at_epsilon_1_and_suggests_numbers():
    plan = make_plan(load_domain(DIABETES_DOMAIN), 332, 1.0, 1e-9)
    assert plan.refused
    assert "sex" not in plan.swamped and len(plan.swamped) == 10
    assert plan.lines()[-1] == (
        "  suggestion: epsilon 4.4 or more, or at most 3 bins in 'age', 'bmi', 'bp', 's1', "
        "'s2', 's3', 's4', 's5', 's6', 'target' at epsilon 1"
    )


def test_the_plan_warns_without_refusing_when_only_pairs_are_noisy():
    plan = make_plan(load_domain(DIABETES_DOMAIN), 332, 3.0, 1e-9)
    assert not plan.refused and plan.swamped == []
    assert len(plan.noisy_pairs) == 18
    assert plan.lines()[-1] == "  suggestion: epsilon 4.4 or more"


# -- merged bins ---------------------------------------------------------------------------
def test_merged_bins_get_the_nonnegative_counts_closest_to_their_noisy_counts():
    # tau = 23/3: 30-tau, 25-tau, 8-tau add up to 40; 6 and 5 fall below tau
    weights = split_weights(np.array([30.0, 25.0, 8.0, 6.0, 5.0]), 40.0)
    assert weights * 40 == pytest.approx([67 / 3, 52 / 3, 1 / 3, 0, 0])


def test_an_empty_tail_bin_with_positive_noise_gets_no_rows_of_a_small_group():
    weights = split_weights(np.array([-12.0, 3.5, 41.0, 2.0]), 30.0)
    assert weights.tolist() == [0.0, 0.0, 1.0, 0.0]


def test_merged_bins_are_shared_evenly_only_when_the_noisy_counts_are_equal():
    assert split_weights(np.array([4.0, 4.0]), 2.0).tolist() == [0.5, 0.5]


# -- utility -------------------------------------------------------------------------------
def test_the_utility_score_is_r2_of_a_model_trained_on_the_output_and_tested_on_real_rows():
    domain = parse_domain(
        {
            "columns": [
                {"name": "x", "type": "integer", "edges": [0, 100]},
                {"name": "g", "type": "category", "categories": ["a", "b"]},
                {"name": "y", "type": "float", "edges": [0, 1000], "decimals": 1},
            ]
        }
    )
    exact = {"x": ["1", "2", "3", "4"], "g": ["a", "b", "a", "b"], "y": ["3", "15", "7", "19"]}
    shifted = {"x": ["1", "2", "3", "4"], "g": ["a", "a", "a", "a"], "y": ["3", "5", "7", "9"]}
    holdout = {"x": ["5", "6"], "g": ["a", "b"], "y": ["11", "23"]}  # y = 2x + 1 + 10 (g=b)
    score = utility(domain, exact, shifted, holdout, "y")
    assert score["metric"] == "R^2" and score["holdout_rows"] == 2
    assert score["trained_on_input"] == pytest.approx(1.0)
    # trained on the output: g has no effect, so (x=6, g=b) is predicted 13 for 23
    assert score["trained_on_output"] == pytest.approx(1 - (0**2 + 10**2) / (6**2 + 6**2), abs=1e-4)


# -- drafting a domain ---------------------------------------------------------------------
def test_a_domain_is_drafted_from_public_facts_in_the_order_given():
    specs = [
        parse_spec("integer", "age=18,30,45,65"),
        parse_spec("category", "sex=female,male"),
        parse_spec("float", "glucose=40..200:2"),
    ]
    document = draft(specs, bins=4).document
    assert [c["name"] for c in document["columns"]] == ["age", "sex", "glucose"]
    assert document["columns"][0]["edges"] == [18, 30, 45, 65]
    assert document["columns"][1]["categories"] == ["female", "male"]
    assert document["columns"][2]["edges"] == [40.0, 80.0, 120.0, 160.0, 200.0]
    assert document["columns"][2]["decimals"] == 2


def test_a_drafted_edge_list_that_is_not_increasing_is_refused():
    with pytest.raises(ValueError, match="strictly increasing"):
        draft([parse_spec("integer", "age=18,65,30"), parse_spec("category", "s=a,b")])


def test_dp_quantiles_put_the_inner_edges_near_the_datas_quantiles():
    pytest.importorskip("opendp")
    values = [str(v) for v in range(1, 101)]  # quantiles 25.x, 50.x, 75.x
    data = {"n": values, "s": ["a"] * 100}
    specs = [parse_spec("integer", "n=0..200"), parse_spec("category", "s=a,b")]
    # epsilon 300 over 2 rounds: each off by more than a few ranks with negligible chance
    with open_engine() as engine:
        table = engine.from_columns(["n", "s"], data)
        document = draft(specs, bins=4, table=table, epsilon=300.0).document
    edges = document["columns"][0]["edges"]
    assert edges[0] == 0 and edges[-1] == 200 and len(edges) == 5
    assert [abs(e - q) <= 3 for e, q in zip(edges[1:-1], (25, 50, 75), strict=True)] == [True] * 3
    assert "spent epsilon 300 (pure DP)" in document["description"]


# -- the command ---------------------------------------------------------------------------
def command(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jupyterlab_manatee.provision", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_an_output_path_under_a_file_is_refused_before_the_run(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = command(
        str(STAGE2), "--domain", str(INSURANCE_DOMAIN), "--epsilon", "3",
        "--output", str(blocker / "out.s1"),
    )  # fmt: skip
    assert result.returncode == 1
    assert f"cannot write {blocker / 'out.s1'}: {blocker} is a file" in result.stderr
    assert "Traceback" not in result.stderr and "plan:" not in result.stdout


def test_an_upload_folder_under_a_file_is_refused_before_the_run(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = command(
        str(STAGE2), "--domain", str(INSURANCE_DOMAIN), "--epsilon", "3",
        "--output", str(tmp_path / "o.s1"), "--upload-s1", str(blocker / "stage1"),
    )  # fmt: skip
    assert result.returncode == 1
    assert f"{blocker} is a file, not a folder" in result.stderr
    assert "plan:" not in result.stdout and not (tmp_path / "o.s1").exists()


def test_a_semicolon_file_gets_a_delimiter_hint(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text(STAGE2.read_text().replace(",", ";"))
    result = command(
        str(table), "--domain", str(INSURANCE_DOMAIN), "--epsilon", "3",
        "--output", str(tmp_path / "o.s1"),
    )  # fmt: skip
    assert result.returncode == 1
    assert "pass --delimiter ';'" in result.stderr


def test_the_delimiter_option_reads_a_semicolon_file(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text(STAGE2.read_text().replace(",", ";"))
    # epsilon 0.001: the plan refuses, so the table was read and checked without a run
    result = command(
        str(table), "--delimiter", ";", "--domain", str(INSURANCE_DOMAIN), "--epsilon", "0.001",
        "--output", str(tmp_path / "o.s1"),
    )  # fmt: skip
    assert result.stdout.startswith("plan: 1338 input rows (not private), 7 columns")
    assert "pass --force to run anyway" in result.stderr


def test_a_tiny_epsilon_is_refused_before_the_run_and_writes_nothing(tmp_path):
    out = tmp_path / "o.s1"
    result = command(
        str(STAGE2), "--domain", str(INSURANCE_DOMAIN), "--epsilon", "0.001", "--output", str(out)
    )
    assert result.returncode == 1
    assert "warning: column 'charges': 15 bins of 89.2 rows on average" in result.stdout
    assert "the noise swamps the counts" in result.stderr
    assert not out.exists()


def test_force_runs_past_a_refusal_and_the_report_says_so(tmp_path):
    pytest.importorskip("mbi", reason="the provision extra (mbi) is not installed")
    table, domain_file = tmp_path / "t.csv", tmp_path / "d.json"
    table.write_text("sex,age\n" + "f,30\nm,50\n" * 20)
    domain_file.write_text(
        json.dumps(
            {
                "columns": [
                    {"name": "sex", "type": "category", "categories": ["f", "m"]},
                    {"name": "age", "type": "integer", "edges": [18, 40, 65]},
                ]
            }
        )
    )
    out, report = tmp_path / "o.s1", tmp_path / "r.json"
    result = command(
        str(table), "--domain", str(domain_file), "--epsilon", "0.1", "--force",
        "--iters", "5", "--seed", "3", "--output", str(out), "--report", str(report),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "  suggestion: epsilon 2.3 or more" in result.stdout
    assert out.read_text().startswith("sex,age\n")
    assert json.loads(report.read_text())["plan"]["forced"] is True


def test_clipped_values_are_counted_on_the_console_per_column(tmp_path):
    # 20 rows with a bmi of 99, outside 15-55; epsilon 0.001 stops at the plan
    rows = [line.split(",") for line in STAGE2.read_text().splitlines()]
    for row in rows[1:21]:
        row[2] = "99"
    table = tmp_path / "t.csv"
    table.write_text("\n".join(",".join(r) for r in rows) + "\n")
    result = command(
        str(table), "--domain", str(INSURANCE_DOMAIN), "--epsilon", "0.001", "--allow-clipping",
        "--output", str(tmp_path / "o.s1"),
    )  # fmt: skip
    assert (
        "clipped (not private): column 'bmi': 20 of 1338 values outside [15, 55) "
        "(0 below, 20 above) put into the end bins"
    ) in result.stdout


def test_too_many_clipped_values_fail_unless_allowed(tmp_path):
    rows = [line.split(",") for line in STAGE2.read_text().splitlines()]
    for row in rows[1:21]:
        row[2] = "99"
    table = tmp_path / "t.csv"
    table.write_text("\n".join(",".join(r) for r in rows) + "\n")
    result = command(
        str(table), "--domain", str(INSURANCE_DOMAIN), "--epsilon", "3",
        "--output", str(tmp_path / "o.s1"),
    )  # fmt: skip
    assert result.returncode == 1
    assert "column 'bmi': 20 of 1338 values (1%) lie outside [15, 55)" in result.stderr
    assert "plan:" not in result.stdout


def test_ctrl_c_during_a_run_ends_it_cleanly_without_output(tmp_path):
    out = tmp_path / "o.s1"
    # as from a terminal, whose Ctrl-C raises KeyboardInterrupt (a test runner started in
    # the background may pass SIGINT on as ignored)
    start = (
        "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "sys.argv[0] = 'manatee-provision'; "
        "runpy.run_module('jupyterlab_manatee.provision', run_name='__main__')"
    )
    process = subprocess.Popen(
        [
            sys.executable, "-c", start, str(STAGE2),
            "--domain", str(INSURANCE_DOMAIN), "--epsilon", "3", "--output", str(out),
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    assert process.stdout is not None
    first = process.stdout.readline()  # the plan is printed before the run starts
    assert first.startswith("plan:")
    time.sleep(0.5)
    os.kill(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    assert "Traceback" not in stderr
    assert "interrupted; no output was written" in stderr
    assert not out.exists()


def test_the_domain_command_writes_a_draft_from_the_command_line(tmp_path):
    out = tmp_path / "d.json"
    result = command(
        "domain", "--output", str(out), "--integer", "age=18,30,45,65",
        "--category", "sex=female,male", "--float", "bmi=15,18.5,25,30,55:3",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    columns = json.loads(out.read_text())["columns"]
    assert [(c["name"], c["type"]) for c in columns] == [
        ("age", "integer"),
        ("sex", "category"),
        ("bmi", "float"),
    ]
    assert columns[2]["edges"] == [15, 18.5, 25, 30, 55] and columns[2]["decimals"] == 3
    assert load_domain(out).names == ["age", "sex", "bmi"]


def test_the_domain_command_writes_which_columns_may_be_empty(tmp_path):
    out = tmp_path / "d.json"
    result = command(
        "domain", "--output", str(out), "--integer", "age=18,30,45,65",
        "--category", "sex=female,male", "--float", "bmi=15,18.5,25,30,55:3",
        "--may-be-empty", "bmi,sex",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    columns = json.loads(out.read_text())["columns"]
    assert [c.get("empty") for c in columns] == [None, True, True]
    assert [c.empty for c in load_domain(out).columns] == [False, True, True]


def test_the_domain_command_refuses_to_let_an_unknown_column_be_empty(tmp_path):
    result = command(
        "domain", "--output", str(tmp_path / "d.json"), "--integer", "age=18,30",
        "--category", "sex=female,male", "--may-be-empty", "bmi",
    )  # fmt: skip
    assert result.returncode == 1
    assert "--may-be-empty names no column given: ['bmi']" in result.stderr


def test_dp_quantiles_of_a_column_that_may_be_empty_read_only_its_numbers(tmp_path):
    pytest.importorskip("opendp")
    data = tmp_path / "real.csv"
    data.write_text("n,s\n" + "".join(f"{v},a\n" for v in range(1, 101)) + ",a\n" * 50)
    out = tmp_path / "d.json"
    result = command(
        "domain", "--output", str(out), "--data", str(data), "--epsilon", "300",
        "--integer", "n=0..200", "--category", "s=a,b", "--bins", "4", "--may-be-empty", "n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    column = json.loads(out.read_text())["columns"][0]
    assert column["empty"] is True
    inner = column["edges"][1:-1]
    assert [abs(e - q) <= 3 for e, q in zip(inner, (25, 50, 75), strict=True)] == [True] * 3


def test_the_domain_command_states_the_budget_its_dp_quantiles_spent(tmp_path):
    pytest.importorskip("opendp")
    out = tmp_path / "d.json"
    result = command(
        "domain", "--output", str(out), "--data", str(STAGE2), "--epsilon", "0.5",
        "--integer", "age=18..65", "--category", "smoker=no,yes", "--bins", "3",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "the DP quantiles spent epsilon 0.5 of the data's budget" in result.stdout
    edges = json.loads(out.read_text())["columns"][0]["edges"]
    assert edges[0] == 18 and edges[-1] == 65 and edges == sorted(set(edges))


def test_the_domain_command_refuses_a_malformed_column_spec(tmp_path):
    result = command("domain", "--output", str(tmp_path / "d.json"), "--integer", "age")
    assert result.returncode == 1
    assert "--integer age: expected NAME=VALUES" in result.stderr
