"""The README's quick start prints what the README says it prints; the readability report runs."""

import os
import re
import subprocess
import sys
from pathlib import Path

import fxgrad

ROOT = Path(__file__).parent.parent


def test_readme_quick_start_prints_what_the_readme_shows(tmp_path):
    readme = (ROOT / "README.md").read_text()
    quick_start = readme[readme.index("## Quick start"):]
    program, printed = re.findall(r"```python\n(.*?)```", quick_start, re.DOTALL)[:2]
    script = tmp_path / "quickstart.py"
    script.write_text(program)
    # this checkout's fxgrad, not whichever one is installed
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.stdout.strip() == printed.strip()


def test_readability_report_runs(capsys):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import readability

    readability.main()
    report = capsys.readouterr().out
    assert "AOTAutograd backward ops" in report and "masked_softmax_attention" in report


def test_readme_error_table_names_every_error_and_each_is_exercised():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Errors"):]
    section = section[: section.index("\n## ", 1)]
    in_table = set(re.findall(r"^\| `(\w+Error)` \|", section, re.MULTILINE))
    errors = {name for name in fxgrad.__all__ if name.endswith("Error") and name != "FxgradError"}
    assert in_table == errors
    from test_bad_inputs import BAD_CALLS

    assert errors <= {error.__name__ for _, _, error, _ in BAD_CALLS}  # each one raised by some bad call


def test_coverage_command_prints_the_core_aten_figure_the_readme_states(capsys):
    from fxgrad.__main__ import main

    assert main(["coverage"]) == 0
    printed = capsys.readouterr().out
    figure = re.search(r"Core ATen IR \(torch.Tag.core\): (\d+) ops; (\d+) with a rule, (\d+) decomposed, "
                       r"(\d+) no gradient, (\d+) refused", printed)
    assert figure, printed[-500:]
    total, *parts = map(int, figure.groups())
    assert sum(parts) == total
    assert "aten.mm " in printed and "aten.atan2 " in printed  # every op, by name
    assert figure.group(0) in (ROOT / "README.md").read_text(), "state the coverage figure in the README"


def test_readme_learning_section_prints_what_the_readme_shows(tmp_path):
    """Each Learning example runs after the quick start and prints what the README shows."""
    readme = (ROOT / "README.md").read_text()
    quick_start = re.findall(r"```python\n(.*?)```", readme[readme.index("## Quick start"):], re.DOTALL)[0]
    for heading in ("### The gradients as math", "### The derivation, step by step", "### Checking your own backward"):
        section = readme[readme.index(heading):]
        program, printed = re.findall(r"```(?:python)?\n(.*?)```", section, re.DOTALL)[:2]
        script = tmp_path / "learning.py"
        script.write_text(quick_start.replace("print(bwd.code)\n", "") + program)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True, env=env)
        assert result.stdout.strip() == printed.strip(), heading
