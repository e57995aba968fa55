"""The repository's promises to a new user: README's commands are the ones CI runs."""

import json
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


# Numbers of docs/results.md that are settings, not results: where they come from.
SETTINGS = {"0.5": "min_speech_seconds of the encoding spec",
            "0.9": "the lowest speed of voices20's degradations (pipeline/demo.py)",
            "0.01": "p_target of a minDCF", "0.05": "p_target of a minDCF"}


def _json_numbers(value, out):
  if isinstance(value, bool):
    return
  if isinstance(value, (int, float)):
    out.add(float(value))
  elif isinstance(value, dict):
    for v in value.values():
      _json_numbers(v, out)
  elif isinstance(value, list):
    for v in value:
      _json_numbers(v, out)


def test_every_figure_of_the_results_has_its_json():
  """Each decimal figure in a section of docs/results.md (tables and prose,
  not commands) is, to the decimals shown (or as a percentage), a number of
  a JSON that the section links (or that JSON's _protocol.json)."""
  docs = ROOT / "docs"
  text = re.sub(r"```.*?```", "", (docs / "results.md").read_text(), flags=re.S)
  unsourced = []
  for section in re.split(r"\n(?=## )", text):
    values = set()
    for link in set(re.findall(r"\(([\w./-]+\.json)\)", section)):
      path = (docs / link).resolve()
      assert path.exists(), link
      for source in (path, path.with_name(path.stem + "_protocol.json")):
        if source.exists():
          _json_numbers(json.loads(source.read_text()), values)
    for figure in re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])", section):
      half = 0.5 * 10 ** -len(figure.split(".")[1]) + 1e-9
      if figure not in SETTINGS and not any(abs(v * scale - float(figure)) <= half
                                            for v in values for scale in (1, 100)):
        unsourced.append(f"{section.splitlines()[0]}: {figure}")
  assert not unsourced
