"""benchmarks/bench.py runs: every model of the suite at the smallest size, one run each (a smoke
test; nothing is timed)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
import bench  # noqa: E402


def test_bench_runs_its_suite_at_micro_size(tmp_path):
    results = bench.main(["--sizes", "micro", "--reps", "1", "--rounds", "1", "--no-compile", "--no-derive",
                          "--json", str(tmp_path / "results.json")])
    assert len(results["models"]) == len(bench.models("micro")) == 7
    for row in results["models"]:
        assert row["fxgrad ms"] > 0 and row["peak MB fxgrad"] > 0 and row["saved MB fxgrad"] > 0
        # fxgrad saves no more than autograd
        assert row["saved MB fxgrad"] <= row["saved MB eager"] * 1.001
    assert (tmp_path / "results.json").exists()
