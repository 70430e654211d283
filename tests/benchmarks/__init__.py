"""Benchmarks of the extension against plain baselines measured in the same run.

``python -m tests.benchmarks [--sizes 64M,256M,1G] [--output-size 500M] [--quick]`` builds
synthetic workspaces, starts the local ManaTEE backend and a Jupyter server with the
extension as subprocesses (so their CPU and memory are their own), and prints one table:
each figure beside its baseline, the ratio, the target and whether it is met.
"""
