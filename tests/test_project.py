"""The repository's promises to a new user: README's commands are the ones CI runs."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _readme_commands():
  text = (ROOT / "README.md").read_text()
  return re.findall(r"```bash\n#[^\n]*\n([^\n]+)\n```", text)


def test_readme_opens_with_the_demo_build_then_the_tests():
  demo, tests = _readme_commands()[:2]
  assert "python -m pipeline.build --runner=DirectRunner" in demo
  assert "pip install" in demo and "pip install" in tests
  assert "pytest" in tests


def test_ci_runs_exactly_the_readme_test_command():
  tests = _readme_commands()[1]
  ci_lines = [l for l in (ROOT / ".ci" / "run").read_text().splitlines()
              if l.strip() and not l.startswith("#") and not l.startswith("set ")
              and not l.startswith("cd ")]
  assert ci_lines == [tests]


def test_every_benchmark_starts_as_a_script_from_the_checkout():
  """Benchmarks are run by hand as `python benchmarks/X.py` (not installed):
  each finds its helpers and answers --help."""
  import subprocess
  import sys

  scripts = sorted((ROOT / "benchmarks").glob("*.py"))
  scripts = [s for s in scripts if s.name not in ("__init__.py", "measure.py")]
  assert len(scripts) >= 7
  for script in scripts:
    out = subprocess.run([sys.executable, str(script), "--help"], cwd=ROOT / "benchmarks",
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, (script.name, out.stderr[-1500:])
    assert "usage:" in out.stdout, script.name


def test_results_name_the_machine_they_were_measured_on():
  import os
  import platform

  from benchmarks.measure import machine

  description = machine()
  assert description.startswith(f"{platform.machine()}, {os.cpu_count()} cores, ")
  assert description.endswith(f"Python {platform.python_version()}")
