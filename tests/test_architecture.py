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
    "pipeline.shards")]


def test_the_rules_see_every_package():
  assert {"pipeline.encode", "pipeline.pitch", "pipeline.transforms", "trainer.fit",
          "tfds_a2i.a2i_speakers.a2i_speakers_dataset_builder"} <= set(MODULES)
  assert "pipeline.spec" in CORE and "pipeline.transforms" not in CORE


@pytest.mark.parametrize("module", CORE)
def test_the_numpy_core_imports_no_framework_and_nothing_above_it(module):
  bad = [i for i in MODULES[module] if under(i, *FRAMEWORKS, "tfds_a2i", "trainer",
                                             "pipeline.transforms", "pipeline.build")]
  assert not bad, f"{module} imports {bad}"


@pytest.mark.parametrize("module", [m for m in MODULES if under(
    m, "pipeline.corpus", "pipeline.report", "pipeline.shards")])
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
