"""The import rules of docs/architecture.md, read from the source (every
import, including those inside functions)."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
FRAMEWORKS = ("tensorflow", "tensorflow_datasets", "keras", "apache_beam")


def module_name(path):
  parts = list(path.relative_to(ROOT).with_suffix("").parts)
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports(path):
  """Modules `path` imports when it is imported (statements at module level)."""
  found = set()
  for node in ast.parse(path.read_text()).body:
    if isinstance(node, ast.Import):
      found |= {a.name for a in node.names}
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
        and node.module != "__future__":
      found.add(node.module)
  return found


def imports(path):
  """Every absolute module name `path` imports, at any depth."""
  found = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      found |= {a.name for a in node.names}
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      found.add(node.module)
      found |= {f"{node.module}.{a.name}" for a in node.names}
  return found


MODULES = {module_name(p): imports(p)
           for package in ("pipeline", "tfds_a2i", "trainer")
           for p in sorted((ROOT / package).rglob("*.py"))}


def under(name, *prefixes):
  return any(name == p or name.startswith(p + ".") for p in prefixes)


CORE = [m for m in MODULES if under(m, "pipeline") and not under(
    m, "pipeline.build", "pipeline.transforms", "pipeline.corpus", "pipeline.report",
    "pipeline.shards", "pipeline.trials")]


def test_the_rules_see_every_package():
  assert {"pipeline.encode", "pipeline.pitch", "pipeline.transforms", "trainer.fit",
          "tfds_a2i.a2i_speakers.a2i_speakers_dataset_builder", "tfds_a2i.build"} <= set(MODULES)
  assert "pipeline.spec" in CORE and "pipeline.transforms" not in CORE


def test_the_build_command_lives_beside_the_builder_and_pipeline_build_only_names_it():
  """`python -m pipeline.build` is the name users type; the command's body
  (Beam options, TFDS builder, versions) is tfds_a2i/build.py. The alias
  imports that and nothing else, and no other module imports the alias."""
  assert MODULES["pipeline.build"] == {"sys", "tfds_a2i.build", "tfds_a2i.build.main"}
  assert not [m for m, deps in MODULES.items() if "pipeline.build" in deps]


@pytest.mark.parametrize("module", [m for m in CORE if m != "pipeline.build"])
def test_the_numpy_core_imports_no_framework_and_nothing_above_it(module):
  bad = [i for i in MODULES[module] if under(i, *FRAMEWORKS, "tfds_a2i", "trainer",
                                             "pipeline.transforms", "pipeline.build")]
  assert not bad, f"{module} imports {bad}"


@pytest.mark.parametrize("module", [m for m in MODULES if under(
    m, "pipeline.corpus", "pipeline.report", "pipeline.shards", "pipeline.trials")])
def test_listing_and_planning_use_beam_only_to_open_files(module):
  beam = [i for i in MODULES[module] if under(i, "apache_beam")]
  assert all(under(i, "apache_beam.io.filesystems") for i in beam), beam
  assert not [i for i in MODULES[module] if under(i, "tensorflow", "tensorflow_datasets",
                                                  "keras", "tfds_a2i", "trainer")]


@pytest.mark.parametrize("module", [m for m in MODULES if under(m, "trainer")])
def test_the_trainer_never_imports_the_build(module):
  bad = [i for i in MODULES[module] if under(i, "apache_beam", "pipeline.transforms",
                                             "pipeline.build", "pipeline.corpus", "tfds_a2i")]
  assert not bad, f"{module} imports {bad}"


def test_the_dataset_builder_never_imports_the_cli_or_the_trainer():
  for module in (m for m in MODULES if under(m, "tfds_a2i")):
    assert not [i for i in MODULES[module] if under(i, "pipeline.build", "trainer")]


def test_no_module_imports_itself_through_others():
  graph = {m: {i for i in deps if i in MODULES and i != m} for m, deps in MODULES.items()}
  # a package's __init__ re-exporting its own modules is not a cycle of meaning
  graph = {m: {i for i in deps if not m.startswith(i + ".")} for m, deps in graph.items()}
  state = {}

  def visit(m, path):
    if state.get(m) == "done":
      return
    assert state.get(m) != "open", "import cycle: " + " -> ".join(path + [m])
    state[m] = "open"
    for n in sorted(graph[m]):
      visit(n, path + [m])
    state[m] = "done"

  for m in sorted(graph):
    visit(m, [])


def _private_framework_uses(path):
  """`X._name` where X is a framework module imported under any name, and
  `from framework... import _name`: APIs that break on the next release."""
  tree = ast.parse(path.read_text())
  aliases, found = set(), []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      aliases |= {(a.asname or a.name).split(".")[0] for a in node.names
                  if under(a.name, *FRAMEWORKS)}
    elif isinstance(node, ast.ImportFrom) and node.module and under(node.module, *FRAMEWORKS):
      aliases |= {a.asname or a.name for a in node.names}
      found += [f"{node.module}.{a.name}" for a in node.names
                if a.name.startswith("_") or any(p.startswith("_") for p in node.module.split("."))]
  for node in ast.walk(tree):
    if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not \
        node.attr.startswith("__"):
      root = node.value
      while isinstance(root, ast.Attribute):
        root = root.value
      if isinstance(root, ast.Name) and root.id in aliases:
        found.append(f"{root.id}....{node.attr}")
  return found


@pytest.mark.parametrize("path", sorted(p for package in ("pipeline", "tfds_a2i", "trainer")
                                        for p in (ROOT / package).rglob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_only_public_framework_apis(path):
  assert not _private_framework_uses(path)


def test_the_private_api_check_sees_what_it_should(tmp_path):
  code = tmp_path / "m.py"
  code.write_text("from apache_beam.io.tfrecordio import _TFRecordUtil\n"
                  "from apache_beam.options import pipeline_options as po\n"
                  "import tensorflow_datasets as tfds\n"
                  "po._BeamArgumentParser()\ntfds.core._x.y\nself._get_filename_template()\n")
  assert len(_private_framework_uses(code)) == 3


def test_importing_any_module_changes_nothing_in_the_process():
  """No environment variable, import hook, root-logger handler or filter,
  BLAS setting or matplotlib backend is set by an import: a library that
  others import must not reconfigure their process. Side effects belong in
  each command's main."""
  code = """
import importlib, json, logging, os, sys
env, hooks = dict(os.environ), list(sys.meta_path)
root = logging.getLogger()
logs = list(root.handlers) + list(root.filters)
changed = {}
names = json.loads(sys.argv[1])
first = [n for n in names if n.split(".")[0] not in ("pipeline", "tfds_a2i", "trainer")]
for name in first:
  importlib.import_module(name)
env, hooks = dict(os.environ), list(sys.meta_path)
logs = list(root.handlers) + list(root.filters)
for name in names[len(first):]:
  importlib.import_module(name)
  what = [k for k in set(os.environ) | set(env) if os.environ.get(k) != env.get(k)]
  what += [type(h).__name__ for h in sys.meta_path if h not in hooks]
  what += [type(h).__name__ for h in root.handlers + root.filters if h not in logs]
  if "matplotlib" in sys.modules and sys.modules["matplotlib"].rcParams._get("backend") == "agg":
    what.append("matplotlib backend")
  if what:
    changed[name] = what
    env, hooks, logs = dict(os.environ), list(sys.meta_path), root.handlers + root.filters
print(json.dumps(changed))
"""
  import json
  import subprocess
  import sys

  names = sorted(m for m in MODULES if not m.endswith("__main__"))
  # The libraries ours import at module level are imported first: what they
  # do to a process on import (TensorFlow's variables, Beam's log handler)
  # is theirs; what is left is ours.
  libraries = sorted({i for p in sorted(ROOT.glob("[pt]*/**/*.py"))
                      for i in top_level_imports(p)
                      if not under(i, "pipeline", "tfds_a2i", "trainer", "tests")})
  env = {k: v for k, v in __import__("os").environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
  out = subprocess.run([sys.executable, "-c", code, json.dumps(libraries + names)],
                       capture_output=True, text=True, cwd=ROOT, env=env)
  assert out.returncode == 0, out.stderr[-2000:]
  assert json.loads(out.stdout.strip().splitlines()[-1]) == {}


def test_one_way_to_cut_a_file_and_to_choose_a_plotting_backend():
  """A file becomes clips through pipeline.clips.clips_of alone, and the
  trainer draws its figures through trainer.results.pyplot alone."""
  for path in sorted(p for package in ("pipeline", "tfds_a2i", "trainer", "benchmarks")
                     for p in (ROOT / package).rglob("*.py")):
    text = path.read_text()
    assert path.name == "clips.py" or "segment(load_audio(" not in text.replace(" ", ""), path
    if under(module_name(path), "trainer", "tfds_a2i") and path.name != "results.py":
      assert "matplotlib.use(" not in text and "import matplotlib" not in text, path
