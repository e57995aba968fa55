"""Command lines, parsed in process: every documented build command is accepted as written."""

import pathlib
import re
import shlex

import pytest

from pipeline import build

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def documented_builds():
  """Every `python -m pipeline.build ...` in a bash block of README.md and docs/."""
  out = []
  for doc in DOCS:
    for block in re.findall(r"```bash\n(.*?)```", doc.read_text(), re.S):
      text = re.sub(r"\\\n\s*", " ", block)
      for line in text.splitlines():
        line = line.split(" #")[0].split("&&")[-1].strip()
        if line.startswith("python -m pipeline.build"):
          out.append(pytest.param(shlex.split(line)[3:], id=f"{doc.name}:{line[25:70]}"))
  return out


def parse(argv):
  parser = build._parser()
  args, beam_args = parser.parse_known_args(argv)
  return args, build._check_beam_options(parser, beam_args)


@pytest.mark.parametrize("argv", documented_builds())
def test_documented_build_commands_parse(argv):
  args, beam_args = parse(argv)
  assert args.image_size in (64, 128, 256, 512) and beam_args[:len(argv) - 1] is not None


def test_the_documentation_has_cluster_commands():
  text = " ".join(" ".join(p.values[0]) for p in documented_builds())
  for runner in ("DataflowRunner", "FlinkRunner", "SparkRunner", "PortableRunner"):
    assert f"--runner={runner}" in text


@pytest.mark.parametrize("argv", [
    ["--setup_file", "./setup.py"], ["--project", "P", "--runner=DataflowRunner"],
    ["--direct_num_workers", "2"], ["--direct_num_workers=2", "--direct_running_mode",
                                    "multi_processing"]])
def test_beam_options_in_both_of_beams_forms(argv):
  _, beam_args = parse(argv)
  assert beam_args[:len(argv)] == argv


@pytest.mark.parametrize("argv,added", [
    ([], ["--direct_num_workers=", "--direct_running_mode=multi_processing"]),
    (["--runner=DirectRunner"], ["--direct_num_workers=", "--direct_running_mode=multi_processing"]),
    (["--direct_num_workers=1"], []),
    (["--runner=PortableRunner", "--job_endpoint=embed"], []),
])
def test_local_builds_use_every_core_unless_told(argv, added, monkeypatch):
  monkeypatch.setattr(build.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
  _, beam_args = parse(argv)
  extra = beam_args[len(argv):]
  assert [a for a in extra if a.startswith("--direct")] == [
      a + "4" if a.endswith("=") else a for a in added]


@pytest.mark.parametrize("argv,message", [
    (["--runner=NoSuchRunner"], "Unexpected pipeline runner: NoSuchRunner"),
    (["--bogus", "3"], "unrecognized arguments: --bogus 3"),
    (["--direct_running_mode=fast"], "invalid choice: 'fast'"),
])
def test_bad_beam_options_fail_with_one_line(argv, message, capsys):
  with pytest.raises(SystemExit) as e:
    parse(argv)
  err = capsys.readouterr().err
  assert e.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv,quiet", [
    ([], True),
    (["--direct_num_workers=2", "--direct_running_mode=multi_processing"], True),
    (["--direct_num_workers=2", "--default_sdk_harness_log_level=INFO"], False),
    (["--runner=PortableRunner", "--job_endpoint=embed"], False),
])
def test_local_workers_log_warnings_only_unless_told(argv, quiet):
  """Worker start-up INFO lines flooded the console of a build given its own
  worker flags; the user's own log level stands."""
  _, beam_args = parse(argv)
  added = beam_args[len(argv):]
  assert ("--default_sdk_harness_log_level=WARNING" in added) == quiet


def test_help_shows_defaults_and_says_beam_options_are_accepted(capsys):
  from pipeline.build import _parser

  text = _parser().format_help()
  assert "(default: 80/10/10)" in text and "(default: 512)" in text
  assert "(default: None)" not in text
  assert "Apache Beam pipeline options are accepted" in text and "--runner" in text
