"""AIM beside MST (needs the ``provision`` extra): its rounds stay within the budget and the
model-size cap, it keeps a strong dependency, the same seed gives the same file, and the
command runs it with its plan and report. Small tables and few iterations keep it quick."""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mbi", reason="the provision extra (mbi) is not installed")

from jupyterlab_manatee.provision import aim, privacy
from jupyterlab_manatee.provision.domain import TableDomain, parse_domain
from jupyterlab_manatee.provision.engines import open_engine
from jupyterlab_manatee.provision.quality import total_variation

REPO = Path(__file__).resolve().parent.parent
INSURANCE_DOMAIN = REPO / "tutorials" / "data" / "insurance.domain.json"


def _table(rows: int = 3000, wide: int = 6) -> tuple[TableDomain, dict[str, list[str]]]:
    """``b`` copies ``a`` nine times in ten (else a random letter); ``c`` and ``d`` are
    independent of everything. ``a`` and ``b`` have ``wide`` categories."""
    rng = np.random.default_rng(0)
    letters = [chr(ord("a") + i) for i in range(wide)]
    a = rng.integers(wide, size=rows)
    b = np.where(rng.random(rows) < 0.9, a, rng.integers(wide, size=rows))
    c, d = rng.integers(3, size=rows), rng.integers(2, size=rows)
    domain = parse_domain(
        {
            "columns": [
                {"name": "a", "type": "category", "categories": letters},
                {"name": "b", "type": "category", "categories": letters},
                {"name": "c", "type": "category", "categories": ["x", "y", "z"]},
                {"name": "d", "type": "category", "categories": ["no", "yes"]},
            ]
        }
    )
    columns = {
        "a": [letters[i] for i in a],
        "b": [letters[i] for i in b],
        "c": [["x", "y", "z"][i] for i in c],
        "d": [["no", "yes"][i] for i in d],
    }
    return domain, columns


def _counts(domain: TableDomain, columns: dict[str, list[str]], degree: int = 2) -> dict:
    with open_engine() as engine:
        table = engine.from_columns(domain.names, columns)
        return table.marginals(domain, aim.cliques(domain.names, degree))


def _fit(domain: TableDomain, counts: dict, **options: object) -> aim.Fit:
    settings = {"epsilon": 1.0, "delta": 1e-9, "seed": 3, "iters": 100, "round_iters": 30}
    settings.update(options)
    return aim.fit(counts, domain, rounds=12, **settings)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def table() -> tuple[TableDomain, dict[str, list[str]], dict]:
    domain, columns = _table()
    return domain, columns, _counts(domain, columns)


def test_the_candidates_are_the_workloads_subsets_weighted_by_shared_columns():
    assert aim.candidates(["a", "b", "c"]) == {
        ("a",): 2.0, ("b",): 2.0, ("c",): 2.0,
        ("a", "b"): 4.0, ("a", "c"): 4.0, ("b", "c"): 4.0,
    }  # fmt: skip
    assert aim.candidates(["a", "b", "c", "d"], degree=3)[("a", "b", "c")] == 9.0  # 3 + 2 + 2 + 2


def test_the_rounds_never_spend_more_than_the_budget(table):
    domain, _, counts = table
    report = _fit(domain, counts).report
    accounting = report["privacy"]
    rho = privacy.rho_for(1.0, 1e-9)
    assert accounting["rho"] == pytest.approx(0.0149731, rel=1e-4) == rho
    spent = accounting["one_way"]["rho"] + sum(r["rho"] for r in report["rounds"])
    assert spent <= rho
    assert spent == pytest.approx(rho, rel=1e-6)  # and the last round spends what is left
    assert accounting["rho_spent"] == spent
    assert accounting["epsilon_spent"] <= 1.0
    # the first rounds cost rho / T, with T = 12 here; annealing only raises the cost
    assert report["rounds"][0]["rho"] == pytest.approx(rho / 12)
    assert all(r["rho"] >= rho / 12 * (1 - 1e-9) for r in report["rounds"])


def test_the_selection_keeps_the_model_within_the_size_cap():
    """``a`` and ``b`` (40 categories each, 1600 cells = 0.0122 MB) depend strongly on each
    other, so without a cap AIM measures them together; a cap of 0.01 MB forbids it."""
    from mbi import Domain
    from mbi.junction_tree import hypothetical_model_size

    domain, columns = _table(wide=40)
    counts = _counts(domain, columns)
    uncapped = _fit(domain, counts, epsilon=20.0)
    assert ["a", "b"] in uncapped.report["selected_marginals"]

    capped = _fit(domain, counts, epsilon=20.0, max_model_size=0.01)
    mbi_domain = Domain(domain.names, [c.size for c in domain.columns])
    measured: list[tuple[str, ...]] = [(n,) for n in domain.names]
    for record in capped.report["rounds"]:
        clique = tuple(record["clique"])
        size = hypothetical_model_size(mbi_domain, [*measured, clique])
        assert record["model_size_mb"] == size
        assert size <= record["size_limit_mb"] <= 0.01 or len(clique) == 1
        measured.append(clique)
    assert ["a", "b"] not in capped.report["selected_marginals"]
    assert capped.report["model_size_mb"] <= 0.01


def test_a_strong_two_way_dependency_survives_at_a_large_epsilon(table):
    domain, _, counts = table
    fitted = _fit(domain, counts, epsilon=20.0, iters=300)
    rows = fitted.estimated_rows
    bins = np.concatenate([p.bins["a"] * 6 + p.bins["b"] for p in fitted.pieces(rows)])
    synthetic = np.bincount(bins, minlength=36).reshape(6, 6)
    real = counts[("a", "b")]
    independent = np.outer(real.sum(axis=1), real.sum(axis=0)) / real.sum()
    assert total_variation(real, independent) > 0.7  # what losing the dependency costs
    assert total_variation(real, synthetic) < 0.05


def test_three_way_workloads_count_and_may_measure_three_way_marginals(table):
    domain, columns, _ = table
    counts = _counts(domain, columns, degree=3)
    assert counts[("a", "b", "c")].shape == (6, 6, 3)
    report = _fit(domain, counts, degree=3, epsilon=5.0).report
    assert report["workload"] == "every 3-way marginal"
    assert report["privacy"]["rho_spent"] <= privacy.rho_for(5.0, 1e-9)


def test_the_aim_plan_states_its_first_and_worst_noise():
    from jupyterlab_manatee.provision.domain import load_domain

    plan = aim.make_plan(load_domain(INSURANCE_DOMAIN), 1338, 3.0, 1e-9)
    # sqrt(16 * 7 / (2 * 0.9 * rho)), rho = 0.120582 at epsilon 3
    assert plan.sigma1 == pytest.approx(22.716, abs=1e-3) == plan.sigma2
    assert plan.rounds == 112
    assert "up to 112 adaptive rounds" in plan.lines()[1]
    assert "22.7 rows at first and at worst" in plan.lines()[1]


# -- the command ---------------------------------------------------------------------------
def _command(folder: Path, name: str, hash_seed: str) -> subprocess.CompletedProcess[str]:
    """One run in a process of its own; each with another string hash order, which must
    not change the output."""
    return subprocess.run(
        [
            sys.executable, "-m", "jupyterlab_manatee.provision", str(folder / "real.csv"),
            "--domain", str(folder / "domain.json"), "--epsilon", "5", "--seed", "11",
            "--method", "aim", "--iters", "50", "--aim-round-iters", "20",
            "--output", str(folder / name), "--report", str(folder / (name + ".json")),
            "--holdout", str(folder / "holdout.csv"), "--target", "b",
        ],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
    )  # fmt: skip


@pytest.fixture(scope="module")
def command_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("aim")
    domain, columns = _table(rows=600, wide=3)
    document = {
        "columns": [
            {"name": c.name, "type": "category", "categories": list(c.categories)}
            for c in domain.columns
        ]
    }
    (folder / "domain.json").write_text(json.dumps(document))
    for name, rows in (("real.csv", range(0, 500)), ("holdout.csv", range(500, 600))):
        with open(folder / name, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(domain.names)
            writer.writerows([columns[n][i] for n in domain.names] for i in rows)
    for name, hash_seed in (("first.csv", "1"), ("second.csv", "2")):
        result = _command(folder, name, hash_seed)
        assert result.returncode == 0, result.stderr
        (folder / (name + ".out")).write_text(result.stdout)
    return folder


def test_the_command_runs_aim_with_its_plan_and_report(command_runs):
    stdout = (command_runs / "first.csv.out").read_text()
    assert stdout.startswith("plan: 500 input rows (not private), 4 columns, epsilon 5")
    assert "up to 64 adaptive rounds" in stdout
    assert "AIM (McKenna, Mullins, Sheldon, Miklau 2022) on mbi" in stdout
    assert "scores accuracy" in stdout
    report = json.loads((command_runs / "first.csv.json").read_text())
    assert report["privacy"]["rho_spent"] <= report["privacy"]["rho"]
    assert report["privacy"]["rounds"]["run"] == len(report["rounds"]) >= 1
    assert report["not_private"]["utility"]["holdout_rows"] == 100
    assert report["not_private"]["distances"]["two_way"]["pairs"]["a x b"] < 0.2


def test_the_same_seed_gives_the_same_file(command_runs):
    first = (command_runs / "first.csv").read_bytes()
    assert first.startswith(b"a,b,c,d\n")
    assert first == (command_runs / "second.csv").read_bytes()


def test_the_aim_plan_at_a_small_epsilon_warns_with_what_would_do():
    from jupyterlab_manatee.provision.domain import load_domain

    plan = aim.make_plan(load_domain(INSURANCE_DOMAIN), 1338, 0.3, 1e-9)
    # sigma sqrt(112 / (1.8 rho)) = 205 rows; a column is swamped under 3 sigma = 616 rows
    # a bin, a pair under 205 rows a cell; 2 bins at most: 1338 / 616 = 2.2
    assert plan.lines() == [
        "plan: 1338 input rows (not private), 7 columns, epsilon 0.3, delta 1e-09, AIM",
        "  AIM measures every 1-way marginal, then in up to 112 adaptive rounds the marginal "
        "(1-way or of the workload) the model gets most wrong; noise per measured bin or cell: "
        "205 rows at first and at worst, halved each time a round finds the model already right",
        "  warning: column 'age': 9 bins of 149 rows on average, under 3 times the first noise "
        "616: its shape may be mostly noise",
        "  warning: column 'bmi': 9 bins of 149 rows on average, under 3 times the first noise "
        "616: its shape may be mostly noise",
        "  warning: column 'children': 6 bins of 223 rows on average, under 3 times the first "
        "noise 616: its shape may be mostly noise",
        "  warning: column 'region': 4 bins of 334 rows on average, under 3 times the first "
        "noise 616: its shape may be mostly noise",
        "  warning: column 'charges': 15 bins of 89.2 rows on average, under 3 times the first "
        "noise 616: its shape may be mostly noise",
        "  warning: pair age-sex: 18 cells of 74.3 rows on average, under the first noise 205",
        "  warning: pair age-bmi: 81 cells of 16.5 rows on average, under the first noise 205",
        "  warning: pair age-children: 54 cells of 24.8 rows on average, under the first noise 205",
        "  warning: pair age-smoker: 18 cells of 74.3 rows on average, under the first noise 205",
        "  warning: pair age-region: 36 cells of 37.2 rows on average, under the first noise 205",
        "  ... and 15 more such pairs",
        "  suggestion: epsilon 7.4 or more, or at most 2 bins in 'age', 'bmi', 'children', "
        "'region', 'charges' at epsilon 0.3",
    ]


# -- the command's options -------------------------------------------------------------------
def _options(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    aim.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_the_aim_options_default_to_the_papers_settings():
    options = _options()
    assert (options.aim_degree, options.aim_max_model_size, options.aim_round_iters) == (
        2,
        80.0,
        1000,
    )


def test_the_aim_options_are_read_as_numbers():
    options = _options("--aim-degree", "3", "--aim-max-model-size", "2.5", "--aim-round-iters", "7")
    assert (options.aim_degree, options.aim_max_model_size, options.aim_round_iters) == (3, 2.5, 7)


def test_a_workload_of_another_degree_is_refused(capsys):
    with pytest.raises(SystemExit):
        _options("--aim-degree", "4")
    assert "argument --aim-degree: invalid choice: 4 (choose from 2, 3)" in capsys.readouterr().err


def test_the_aim_options_help_says_what_each_sets(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    parser = argparse.ArgumentParser(prog="p")
    aim.add_arguments(parser)
    text = parser.format_help()
    assert text[text.index("options:") :] == (
        "options:\n"
        "  -h, --help            show this help message and exit\n"
        "  --aim-degree {2,3}    --method aim: the workload, every 2-way (default) or\n"
        "                        3-way marginal\n"
        "  --aim-max-model-size MB\n"
        "                        --method aim: the cap on the model's size (default 80)\n"
        "  --aim-round-iters AIM_ROUND_ITERS\n"
        "                        --method aim: estimation iterations after each round\n"
        "                        (default 1000; --iters is the final estimation's)\n"
    )


def test_the_commands_options_reach_the_fit():
    domain, columns = _table(rows=300, wide=2)
    counts = _counts(domain, columns, degree=3)
    options = _options("--aim-degree", "3", "--aim-max-model-size", "5", "--aim-round-iters", "3")
    options.epsilon, options.delta, options.iters = 1.0, 1e-9, 4
    report = aim.fit_from_args(counts, domain, options, seed=5).report
    assert report["workload"] == "every 3-way marginal"
    assert (report["max_model_size_mb"], report["iterations"], report["round_iterations"]) == (
        5.0,
        4,
        3,
    )
    assert (report["privacy"]["epsilon"], report["privacy"]["delta"]) == (1.0, 1e-9)


def test_the_commands_seed_reaches_the_fit():
    domain, columns = _table(rows=300, wide=2)
    options = _options("--aim-round-iters", "2")
    options.epsilon, options.delta, options.iters = 1.0, 1e-9, 2
    fitted = aim.fit_from_args(_counts(domain, columns), domain, options, seed=5)
    # the sampler's seed: the third of five generators spawned from SeedSequence(5)
    assert fitted.numpy_seed == 3453382619


def test_the_default_workload_is_every_pair():
    assert aim.workload(["a", "b", "c"]) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert aim.cliques(["a", "b", "c"]) == [
        ("a",), ("b",), ("c",), ("a", "b"), ("a", "c"), ("b", "c"),
    ]  # fmt: skip


def test_a_workload_of_another_degree_is_refused_by_name():
    with pytest.raises(ValueError) as refused:
        aim.workload(["a", "b", "c"], 4)
    assert str(refused.value) == "the AIM workload is of 2-way or 3-way marginals, not 4-way"


def test_a_columns_weight_counts_the_three_way_cliques_it_is_in():
    # of five columns, 'a' is in 6 of the 10 triples (and in 4 of the 10 pairs)
    assert aim.candidates(list("abcde"), degree=3)[("a",)] == 6.0


def _categories(*sizes: int) -> TableDomain:
    return parse_domain(
        {
            "columns": [
                {"name": name, "type": "category", "categories": [f"v{i}" for i in range(size)]}
                for name, size in zip("abc", sizes, strict=False)
            ]
        }
    )


def test_the_aim_plan_of_two_bin_columns_needs_the_epsilon_of_their_one_way_noise():
    # sigma 42.2 (48 rounds, epsilon 1): 'a' and 'b' average 50 rows a bin, under 3 sigma;
    # 'c' has one bin and is never swamped; the 1-way need (50 / 3 rows of sigma) binds
    # before the pairs' (25), and not even 2 bins clear the threshold
    plan = aim.make_plan(_categories(2, 2, 1), 100, 1.0, 1e-9)
    assert plan.lines()[2:] == [
        "  warning: column 'a': 2 bins of 50 rows on average, under 3 times the first noise "
        "127: its shape may be mostly noise",
        "  warning: column 'b': 2 bins of 50 rows on average, under 3 times the first noise "
        "127: its shape may be mostly noise",
        "  warning: pair a-b: 4 cells of 25 rows on average, under the first noise 42.2",
        "  suggestion: epsilon 2.7 or more",
    ]


def test_the_aim_plan_of_one_bin_columns_warns_of_nothing():
    plan = aim.make_plan(_categories(1, 1), 100, 1.0, 1e-9)
    assert (plan.swamped, plan.noisy_pairs, plan.epsilon_needed) == ([], [], 1.1)
