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
