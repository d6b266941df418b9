"""The README's quick start prints what the README says it prints; the readability report runs."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_readme_quick_start_prints_what_the_readme_shows(tmp_path):
    readme = (ROOT / "README.md").read_text()
    quick_start = readme[readme.index("## Quick start"):]
    program, printed = re.findall(r"```python\n(.*?)```", quick_start, re.DOTALL)[:2]
    script = tmp_path / "quickstart.py"
    script.write_text(program)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == printed.strip()


def test_readability_report_runs(capsys):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import readability

    readability.main()
    report = capsys.readouterr().out
    assert "AOTAutograd backward ops" in report and "masked_softmax_attention" in report
