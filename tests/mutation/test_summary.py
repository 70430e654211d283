"""The wrapper's arithmetic: kills counted, reviewed equivalents set apart only while they
still name the same mutation, and the score over the rest."""

from __future__ import annotations

import tomllib

from tests.mutation.__main__ import EQUIVALENT_FILE, TARGETS, changed_lines, summarise

KILLED, SURVIVED, NO_TESTS, TIMEOUT = 1, 0, 33, 36
DIFF = '-    if host in ("localhost",):\n+    if host in ("LOCALHOST",):'


def test_the_score_is_killed_over_the_mutants_not_equivalent():
    codes = {"a__mutmut_1": KILLED, "a__mutmut_2": TIMEOUT, "a__mutmut_3": SURVIVED}
    codes |= {"a__mutmut_4": NO_TESTS, "a__mutmut_5": SURVIVED}
    equivalents = {"a__mutmut_5": {"mutation": 'if host in ("LOCALHOST",):', "reason": "r"}}
    diffs = {"a__mutmut_3": DIFF, "a__mutmut_4": DIFF, "a__mutmut_5": DIFF}
    summary = summarise("access", codes, diffs, equivalents)
    assert (summary.total, summary.killed) == (5, 2)
    assert list(summary.survived) == ["a__mutmut_3", "a__mutmut_4"]
    assert summary.equivalent == {"a__mutmut_5": "r"}
    assert summary.score == 2 / 4
    assert summary.stale == {}


def test_an_equivalent_entry_whose_mutation_changed_counts_as_a_survivor():
    equivalents = {"a__mutmut_1": {"mutation": "return False", "reason": "r"}}
    summary = summarise("access", {"a__mutmut_1": SURVIVED}, {"a__mutmut_1": DIFF}, equivalents)
    assert list(summary.survived) == ["a__mutmut_1"]
    assert summary.equivalent == {}
    assert summary.stale["a__mutmut_1"].startswith("listed as equivalent for 'return False'")


def test_an_equivalent_entry_that_is_killed_or_gone_is_reported_stale():
    equivalents = {
        "a__mutmut_1": {"mutation": "x", "reason": "r"},
        "a__mutmut_9": {"mutation": "y", "reason": "r"},
    }
    summary = summarise("access", {"a__mutmut_1": KILLED}, {}, equivalents)
    assert summary.stale == {
        "a__mutmut_1": "listed as equivalent but killed: remove the entry",
        "a__mutmut_9": "listed as equivalent but no such mutant: remove the entry",
    }
    assert (summary.killed, summary.score) == (1, 1.0)


def test_the_mutated_line_is_read_from_the_diff():
    assert changed_lines(DIFF) == 'if host in ("LOCALHOST",):'


def test_a_mutant_that_only_removes_a_line_is_pinned_by_the_removed_line():
    assert changed_lines("-            trust_env=False,") == "deleted: trust_env=False,"


def test_every_equivalent_entry_names_its_mutation_and_a_reason():
    listed = tomllib.loads(EQUIVALENT_FILE.read_text("utf-8"))
    assert set(listed) <= set(TARGETS)
    for entries in listed.values():
        for entry in entries.values():
            assert set(entry) == {"mutation", "reason"}
            assert entry["mutation"].strip() and entry["reason"].strip()


def test_mutants_an_interrupted_run_left_unchecked_are_out_of_the_score():
    codes = {"a__mutmut_1": KILLED, "a__mutmut_2": None, "a__mutmut_3": SURVIVED}
    summary = summarise("verify", codes, {"a__mutmut_3": DIFF}, {})
    assert (summary.not_checked, summary.killed, list(summary.survived)) == (1, 1, ["a__mutmut_3"])
    assert summary.score == 1 / 2
