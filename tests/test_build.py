"""`python -m pipeline.build` (tfds_a2i/build.py): its flags parsed in process,
every documented build command accepted as written; end-to-end builds with
the real Beam pipeline and TFDS writer on tiny corpora."""

import hashlib
import json
import os
import pathlib
import re
import shlex
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from pipeline.audio import load_audio
from pipeline.clips import clips_of, segment
from pipeline.encode import encode_clip
from tests.helpers import (ENV, build, example_digests, fresh_python, make_corpus,
                           python_without_tensorflow, write_wav)

from tfds_a2i import Builder, build as command

VERSION = str(Builder.VERSION)

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  return make_corpus(tmp_path_factory.mktemp("corpus") / "voices")


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory):
  data_dir = tmp_path_factory.mktemp("tfds")
  out = build(["--input", str(corpus), "--image_size", "64"], data_dir)
  version_dir = data_dir / "a2i_speakers" / "voices_64" / VERSION
  with open(version_dir / "build_report.json") as f:
    return data_dir, version_dir, json.load(f), out


def load(data_dir, name="a2i_speakers/voices_64"):
  import tensorflow_datasets as tfds

  builder = tfds.builder(name, data_dir=str(data_dir))
  rows = []
  for split in builder.info.splits:
    for ex in tfds.as_numpy(builder.as_dataset(split=split)):
      rows.append(dict(ex, split=split, recording=ex["recording"].decode()))
  return builder, rows


@pytest.mark.slow
def test_report_accounts_for_every_file(built, corpus):
  _, _, report, out = built
  stdout = out.stdout
  on_disk = {os.path.relpath(os.path.join(d, n), corpus) for d, _, names in os.walk(corpus)
             for n in names}
  reported = {r["file"]: r for r in report["files"]}
  assert set(reported) == on_disk
  expect = {"ben/empty.wav": "empty", "ben/noise.wav": "not_audio", "cyd/cut.wav": "corrupt",
            "cyd/silence.wav": "silent", "cyd/blip.wav": "too_short", "NOTES.md": "not_audio"}
  assert {f: reported[f]["reason"] for f in expect} == expect
  long_clips = len(segment(load_audio(str(corpus / "ana" / "long take.wav"))))
  assert reported["ana/long take.wav"]["clips"] == long_clips >= 2
  assert reported["cyd/half.wav"]["status"] == "encoded"             # what remains decodes
  assert report["summary"]["encoded"] == 3 * 5 + 2
  assert "5 failed, 1 skipped" in stdout
  # It ends with where the report is and what to run next; internal counters
  # stay in the report.
  data_dir, version_dir = built[0], built[1]
  assert stdout.strip().splitlines()[-2:] == [
      f"  report   {version_dir / 'build_report.json'}",
      f"  next     python -m trainer.fit --dataset a2i_speakers/voices_64 --data_dir {data_dir}"]
  assert "files_decoded=" not in stdout
  # While it encodes, it says how far it is; the last count is every shard.
  shards = len(list(version_dir.glob("a2i_speakers-*.tfrecord-*")))
  progress = [l for l in stdout.splitlines() if l.startswith("encoding 22 files: ")]
  assert progress and progress[-1].startswith(f"encoding 22 files: {shards} of {shards} shards")
  # 22 audio names: all but empty, noise (not audio), cut (no header) and
  # silence (one value throughout) decode.
  assert report["counters"]["files_decoded"] == 18


@pytest.mark.slow
def test_examples_match_report_and_recompute_from_audio(built, corpus):
  data_dir, _, report, _ = built
  builder, rows = load(data_dir)
  for split, n in report["summary"]["clips_per_split"].items():
    assert builder.info.splits[split].num_examples == n == sum(r["split"] == split for r in rows)
  assert builder.info.features["speaker"].names == ["ana", "ben", "cyd"]
  assert builder.info.metadata["image_size"] == 64
  bands = {r["file"]: r["band_hz"] for r in report["files"]}
  assert {bands[row["recording"]] for row in rows} == {8000.0}   # cyd_4.wav too: 8 kHz
  assert report["summary"]["files_per_band"] == {"8000": len({r["recording"] for r in rows})}
  for row in rows:
    clip = clips_of(str(corpus / row["recording"]))[row["clip_index"]]
    assert clip.band == bands[row["recording"]]
    with threadpool_limits(1):  # as the pipeline's workers run the core
      expected = encode_clip(clip.samples, 64, require_speech=False, band=clip.band)
    np.testing.assert_array_equal(row["image"], expected.image)
    np.testing.assert_array_equal(row["descriptors"], expected.descriptors)
    assert row["start_seconds"] == pytest.approx(clip.start / 16000)
    speaker = builder.info.features["speaker"].int2str(row["speaker"])
    assert row["recording"].split("/")[0] == speaker


@pytest.mark.slow
def test_splits_are_disjoint_by_recording_and_cover_each_speaker(built):
  data_dir, _, _, _ = built
  _, rows = load(data_dir)
  split_of = {}
  for row in rows:
    assert split_of.setdefault(row["recording"], row["split"]) == row["split"]
  for speaker in range(3):
    assert {r["split"] for r in rows if r["speaker"] == speaker} >= {"train", "test"}


@pytest.mark.slow
def test_tfds_load_in_a_fresh_process_without_our_code(built):
  data_dir, _, report, _ = built
  code = ("import sys, tensorflow_datasets as tfds; "
          f"ds = tfds.load('a2i_speakers/voices_64', data_dir={str(data_dir)!r}); "
          "n = {k: sum(1 for _ in v) for k, v in ds.items()}; "
          "assert not [m for m in sys.modules if m.split('.')[0] in ('pipeline', 'tfds_a2i')]; "
          "print(n['train'], n['validation'], n['test'])")
  out = fresh_python(code)
  counts = report["summary"]["clips_per_split"]
  assert out.stdout.split() == [str(counts[s]) for s in ("train", "validation", "test")]


def shard_digests(data_dir, name="voices_64"):
  """file name -> sha256 of every TFRecord shard of a build."""
  version = data_dir / "a2i_speakers" / name / VERSION
  return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
          for p in version.glob("a2i_speakers-*.tfrecord-*")}


@pytest.mark.slow
def test_one_process_and_two_worker_processes_write_the_same_dataset(built, corpus, tmp_path):
  data_dir, _, _, out = built
  stdout = out.stdout
  assert "DirectRunner: 2 worker processes" in stdout or os.cpu_count() < 2  # the default
  # The workers' start-up announcements stay out of the console.
  from pipeline.console import WORKER_NOISE

  assert not [n for n in WORKER_NOISE if n in out.stderr], out.stderr[-2000:]
  out = build(["--input", str(corpus), "--image_size", "64", "--direct_num_workers=1"], tmp_path)
  assert "worker processes" not in out.stdout
  two, one = example_digests(data_dir), example_digests(tmp_path)
  assert len(one) > 15 and one == two
  assert len(shard_digests(tmp_path)) >= 3 and shard_digests(tmp_path) == shard_digests(data_dir)


def _free_port():
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_portable_runner_on_separate_sdk_workers_writes_the_same_dataset(built, corpus,
                                                                         tmp_path):
  """The cluster execution model (Flink, Spark, Dataflow): a job service, and
  SDK workers in their own processes, started by a worker pool, that see only
  what the pipeline carries. Its examples equal the DirectRunner build's."""
  port = _free_port()
  env = dict(ENV, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
  pool = subprocess.Popen([sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
                           f"--service_port={port}"], env=env, cwd=tmp_path,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    deadline = time.time() + 60
    while True:
      try:
        socket.create_connection(("localhost", port), timeout=1).close()
        break
      except OSError:
        assert time.time() < deadline and pool.poll() is None, "worker pool did not start"
        time.sleep(0.2)
    out = build(["--input", str(corpus), "--image_size", "64", "--runner=PortableRunner",
                 "--job_endpoint=embed", "--environment_type=EXTERNAL",
                 f"--environment_config=localhost:{port}"], tmp_path / "portable")
  finally:
    pool.terminate()
    pool.wait(timeout=30)
  assert "worker processes" not in out.stdout  # no local parallelism added to a portable job
  data_dir, _, report, _ = built
  portable = example_digests(tmp_path / "portable")
  assert len(portable) == sum(report["summary"]["clips_per_split"].values())
  assert portable == example_digests(data_dir)
  assert shard_digests(tmp_path / "portable") == shard_digests(data_dir)


@pytest.mark.slow
def test_corpus_where_every_file_fails_is_an_error_not_a_dataset(tmp_path):
  root = tmp_path / "bad"
  write_wav(root / "zed" / "quiet.wav", np.zeros(16000, np.float32))
  (root / "zed" / "junk.wav").write_bytes(b"nothing here")
  out = build(["--input", str(root), "--image_size", "64"], tmp_path / "tfds", check=False)
  assert out.returncode == 1
  assert "no file of the corpus could be used" in out.stderr
  assert "Traceback" not in out.stderr
  assert not (tmp_path / "tfds" / "a2i_speakers" / "bad_64" / VERSION).exists()


@pytest.mark.parametrize("args,message", [
    (["--bogus_flag=1"], "unrecognized arguments: --bogus_flag=1"),
    (["--input", "/no/such/corpus"], "no such file or directory"),
    (["--image_size", "100"], "invalid choice"),
    (["--splits", "90/10"], "splits must look like"),
    (["--input", ".", "--demo", "voices20"], "--demo and --input exclude each other"),
])
def test_bad_flags_fail_at_once_with_one_line(tmp_path, args, message):
  out = build(args, tmp_path, check=False)
  assert out.returncode == 2
  assert message in out.stderr and "Traceback" not in out.stderr
  assert len(out.stderr.strip().splitlines()) == 1
  assert not (tmp_path / "a2i_speakers").exists()


@pytest.mark.slow
def test_readme_demo_build_then_tfds_load_by_bare_name(tmp_path):
  env = dict(ENV, TFDS_DATA_DIR=str(tmp_path))
  out = subprocess.run([sys.executable, "-m", "pipeline.build", "--runner=DirectRunner"],
                       capture_output=True, text=True, env=env)
  assert out.returncode == 0, out.stderr[-3000:]
  code = ("import tensorflow_datasets as tfds; "
          "ds, info = tfds.load('a2i_speakers', with_info=True); "
          "print(info.features['speaker'].names, info.features['image'].shape, "
          "sum(s.num_examples for s in info.splits.values()))")
  out = fresh_python(code, env=env)
  assert out.stdout.strip() == "['aria', 'rachid'] (512, 512, 3) 1096"


# ---- flags, parsed in process ----------------------------------------------

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
  parser = command._parser()
  args, beam_args = parser.parse_known_args(argv)
  return args, command._check_beam_options(parser, beam_args)


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
  monkeypatch.setattr(command.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
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
  text = command._parser().format_help()
  assert "(default: 80/10/10)" in text and "(default: 512)" in text
  assert "(default: None)" not in text
  assert "Apache Beam pipeline options are accepted" in text and "--runner" in text


@pytest.mark.slow
def test_a_second_build_of_a_dataset_refuses_at_once_and_the_first_completes(corpus, tmp_path):
  """Two terminals, one command: the second exits within seconds with one
  line naming the first; --wait waits for it instead; the first's dataset is
  complete. A lock left by a killed build is taken over."""
  args = [sys.executable, "-m", "pipeline.build", "--input", str(corpus), "--image_size", "64",
          "--data_dir", str(tmp_path), "--runner=DirectRunner", "--direct_num_workers=1"]
  lock = tmp_path / "a2i_speakers" / "voices_64" / ".build.lock"
  first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=ENV)
  deadline = time.time() + 60
  while not lock.exists() and time.time() < deadline:
    time.sleep(0.1)
  assert lock.exists(), "the first build never took its lock"
  started = time.time()
  second = subprocess.run(args, capture_output=True, text=True, env=ENV)
  assert time.time() - started < 5
  assert second.returncode != 0 and "Traceback" not in second.stderr
  assert second.stderr.strip().splitlines() == [second.stderr.strip()]
  assert f"pid {first.pid}" in second.stderr and "--wait" in second.stderr
  waited = subprocess.run(args + ["--wait"], capture_output=True, text=True, env=ENV)
  assert first.wait() == 0, first.stderr[-2000:]
  assert waited.returncode == 0 and "already built" in waited.stdout
  assert not lock.exists()
  assert load(tmp_path)[0].info.splits.total_num_examples > 0
  # A killed build's lock: its pid runs no more on this host.
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True).stdout.strip()
  lock.write_text(json.dumps({"pid": int(dead), "host": socket.gethostname(),
                              "started": "earlier", "command": "killed"}))
  again = subprocess.run(args + ["--overwrite"], capture_output=True, text=True, env=ENV)
  assert again.returncode == 0, again.stderr[-2000:]
  assert f"took over the lock of a build that no longer runs (pid {dead}" in again.stdout
  assert not lock.exists()


CANONICAL = """
import hashlib, json
import numpy as np
def canonical(ex):
  return [hashlib.sha256(np.asarray(ex["image"], np.uint8).tobytes()).hexdigest(),
          hashlib.sha256(np.asarray(ex["descriptors"], np.float32).tobytes()).hexdigest(),
          int(ex["speaker"]), bytes(ex["recording"]).decode(), int(ex["clip_index"]),
          round(float(ex["start_seconds"]), 4)]
"""


@pytest.mark.slow
def test_array_record_build_reads_without_tensorflow_as_the_tfrecord_build(built, corpus,
                                                                            tmp_path):
  """--file_format array_record: the same shard tasks write ArrayRecord files;
  a process where TensorFlow is not installed reads every example through
  tfds.data_source, equal to the TFRecord build's, and README's Grain
  loader batches them."""
  import tensorflow_datasets as tfds

  data_dir, _, report, _ = built
  build(["--input", str(corpus), "--image_size", "64", "--file_format", "array_record"],
        tmp_path / "tfds")
  shards = sorted(p.name for p in (tmp_path / "tfds").rglob("*-of-*"))
  assert shards and all(".array_record-" in name for name in shards)
  code = CANONICAL + f"""
import sys
import tensorflow_datasets as tfds
out = {{}}
for split in ("train", "validation", "test"):
  source = tfds.data_source("a2i_speakers/voices_64", split=split, data_dir={str(tmp_path / "tfds")!r})
  out[split] = [canonical(source[i]) for i in range(len(source))]
print(json.dumps({{"examples": out, "tensorflow": "tensorflow" in sys.modules}}))
"""
  read = json.loads(python_without_tensorflow(code, tmp_path).stdout.strip().splitlines()[-1])
  assert read["tensorflow"] is False
  namespace = {}
  exec(CANONICAL, namespace)
  builder = tfds.builder("a2i_speakers/voices_64", data_dir=str(data_dir))
  for split, rows in read["examples"].items():
    expected = [namespace["canonical"](ex) for ex in tfds.as_numpy(
        builder.as_dataset(split=split, shuffle_files=False))]
    assert rows == expected, split
    assert len(rows) == report["summary"]["clips_per_split"][split]
  readme = (ROOT / "README.md").read_text()
  example = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "grain" in b)
  example = example.replace("DATA_DIR", repr(str(tmp_path / "tfds"))).replace(
      "  pass", "  print(images.dtype, images.shape, speakers.dtype)")
  out = python_without_tensorflow(example, tmp_path).stdout.strip().splitlines()
  train = report["summary"]["clips_per_split"]["train"]
  assert out[0] == f"uint8 ({min(32, train)}, 64, 64, 3) int64"
  assert len(out) == -(-train // 32)                          # every example, in batches
