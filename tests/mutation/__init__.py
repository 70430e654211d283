"""Mutation testing of the security modules: ``python -m tests.mutation <module>...``.

A thin wrapper over mutmut (3.x): for each named module it lays out a scratch copy of the
project under ``build/mutation/<module>/``, runs ``mutmut run`` there with only the test
files that cover that module, and prints mutants, killed, survived, equivalent (from the
reviewed ``equivalent.toml`` beside this file) and the score, killed / (total - equivalent).
"""
