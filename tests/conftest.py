"""Shared fixtures: real decoded speech from eSpeak NG voices, real human speech,
and a small dataset built by the real pipeline with a run trained on it (once
per test process: every trainer command's tests read them)."""

import json
import pathlib

import pytest

from pipeline import demo
from pipeline.audio import to_working_rate
from pipeline.espeak import synthesize
from tests.helpers import cli, run

THREE_VOICES = (demo.Voice("hi", "en+f3", 80), demo.Voice("mid", "en-us+m1", 50),
                demo.Voice("lo", "en+m3", 15))

SENTENCE = "The birch canoe slid on the smooth planks, glue the sheet to the dark blue background."


@pytest.fixture(scope="session")
def speech():
  """voice -> 16 kHz float32 speech, about 5 s, from two voices of different pitch."""
  out = {}
  for voice, pitch in (("en+m3", 25), ("en+f3", 80)):
    x, rate = synthesize(SENTENCE, voice, rate=150, pitch=pitch)
    out[voice] = to_working_rate(x, rate)
  return out


@pytest.fixture(scope="session")
def real_speech(tmp_path_factory):
  """Folder of real human speech: KLettres (20 speakers) and alsa-utils (1),
  assembled by benchmarks/corpora/klettres.sh from Debian's packages, once
  per machine (A2I_REAL_SPEECH or ~/.cache/a2i/real_speech)."""
  import os
  import subprocess

  root = pathlib.Path(os.environ.get("A2I_REAL_SPEECH",
                                     pathlib.Path.home() / ".cache" / "a2i" / "real_speech"))
  if not (root / "klettres").is_dir() or not (root / "alsa-utils").is_dir():
    script = pathlib.Path(__file__).parent.parent / "benchmarks" / "corpora" / "klettres.sh"
    out = subprocess.run(["bash", str(script), str(root)], capture_output=True, text=True)
    if out.returncode != 0:
      pytest.skip(f"real speech unavailable here: {out.stderr.strip()[-300:]}")
  return root


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
  """(data_dir, corpus folder) of a2i_speakers/three: 3 voices x 40
  utterances at 64 px, split 70/15/15."""
  root = tmp_path_factory.mktemp("trainer")
  corpus = demo.materialise(demo.DemoCorpus("three", THREE_VOICES, 40), str(root / "corpus"))
  run("pipeline.build", "--input", corpus, "--name", "three", "--image_size", "64",
      "--splits", "70/15/15", "--data_dir", str(root / "tfds"))
  return root / "tfds", corpus


@pytest.fixture(scope="session")
def dataset_array_record(dataset):
  """data_dir of `dataset`'s corpus built again with --file_format array_record."""
  _, corpus = dataset
  data_dir = pathlib.Path(corpus).parent / "tfds_array_record"
  run("pipeline.build", "--input", corpus, "--name", "three", "--image_size", "64",
      "--splits", "70/15/15", "--file_format", "array_record", "--data_dir", str(data_dir))
  return data_dir


@pytest.fixture(scope="session")
def trained(dataset, tmp_path_factory):
  """(run folder, metrics) of `trainer.fit` on `dataset`, 25 epochs, defaults otherwise."""
  data_dir, _ = dataset
  output = tmp_path_factory.mktemp("run")
  cli("trainer.fit", "--dataset", "a2i_speakers/three", "--data_dir", str(data_dir),
      "--output", str(output), "--epochs", "25", "--batch_size", "8")
  with open(output / "metrics.json") as f:
    return output, json.load(f)
