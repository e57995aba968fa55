"""trainer.predict: the model's answers on files, bounded memory, the open-set
answer, and never an image of another encoding."""

import json
import os
import pathlib

import numpy as np
import pytest

from tests.conftest import THREE_VOICES as VOICES
from tests.helpers import cli


@pytest.mark.slow
def test_predict_agrees_with_the_model_on_the_dataset_images(trained, dataset):
  import tensorflow_datasets as tfds

  from trainer.predict import load_run

  output, _ = trained
  data_dir, corpus = dataset
  model, settings = load_run(str(output / "model.keras"))   # safe_mode=True
  test = tfds.as_numpy(tfds.load("a2i_speakers/three", split="test", data_dir=str(data_dir)))
  examples = list(test)[:5]
  files = [os.path.join(corpus, ex["recording"].decode()) for ex in examples]
  out = cli("trainer.predict", "--model", str(output / "model.keras"), *files,
            os.path.join(corpus, "nope.wav"), check=False)
  assert out.returncode == 1                                   # one file failed ...
  assert "nope.wav: error:" in out.stderr
  lines = out.stdout.strip().splitlines()
  assert len(lines) == 5                                       # ... the others went on
  for ex, line in zip(examples, lines):
    image = ex["image"][None].astype(np.float32)
    expected = settings["speakers"][int(np.argmax(model.predict(image, verbose=0)))]
    assert line.split("\t")[2] == expected
  # --json, and the open-set answer: no voice is that close to a speaker's
  # profile (0), every voice is (1e9), 'auto' is the run's own threshold.
  far = cli("trainer.predict", "--model", output / "model.keras", "--json",
            "--threshold", "0", *files[:2])
  for line, path in zip(far.stdout.strip().splitlines(), files[:2]):
    answer = json.loads(line)
    assert answer["file"] == path and answer["speaker"] == "unknown" and answer["distance"] > 0
    assert all(c["speaker"] == "unknown" for c in answer["clips"]) and answer["threshold"] == 0
  near = json.loads(cli("trainer.predict", "--model", output / "model.keras", "--json",
                        "--threshold", "1e9", files[0]).stdout)
  assert near["speaker"] == lines[0].split("\t")[2]
  with open(output / "speakers.json") as f, open(output / "metrics.json") as g:
    profiles = json.load(f)
    assert profiles["threshold_95"] == json.load(g)["open_set_threshold_95"]
  assert set(profiles["speakers"]) == {v.speaker for v in VOICES}


@pytest.mark.slow
def test_predict_bounds_memory_on_a_long_recording(trained, dataset, tmp_path):
  """A recording of many clips is encoded and scored a batch at a time: one
  line per clip, one overall line, whatever its length."""
  import soundfile as sf

  from trainer import predict

  output, _ = trained
  _, corpus = dataset
  x, sr = sf.read(os.path.join(corpus, "hi", sorted(os.listdir(os.path.join(corpus, "hi")))[0]))
  sf.write(str(tmp_path / "long.wav"), np.tile(x, 60), sr)   # ~ 3 minutes
  class Batches(list):          # stands in for the progress bar: records each batch's size
    def update(self, n):
      self.append(n)

  batches = Batches()
  model, settings = predict.load_run(str(output / "model.keras"))
  clips, probs, embeddings = predict.predict_file(model, settings, str(tmp_path / "long.wav"),
                                                  progress=batches)
  assert len(clips) == len(probs) == len(embeddings) == sum(batches) > predict.BATCH
  assert max(batches) <= predict.BATCH
  out = cli("trainer.predict", "--model", str(output / "model.keras"), str(tmp_path / "long.wav"))
  lines = out.stdout.strip().splitlines()
  assert len(lines) == len(clips) + 1
  assert lines[-1].split("\t")[1] == f"overall ({len(clips)} clips)"


@pytest.mark.slow
def test_a_model_is_never_fed_images_of_another_encoding(trained, dataset, tmp_path):
  """A run whose recorded encoding this code would write differently (one
  range changed) is refused by predict with one line, not misread."""
  import shutil

  output, _ = trained
  _, corpus = dataset
  shutil.copy(output / "model.keras", tmp_path / "model.keras")
  with open(output / "encoding.json") as f:
    settings = json.load(f)
  settings["encoding"]["layout"]["tracks"][0]["hi"] = 400.0
  with open(tmp_path / "encoding.json", "w") as f:
    json.dump(settings, f)
  wav = next((pathlib.Path(corpus) / "hi").iterdir())
  out = cli("trainer.predict", "--model", tmp_path / "model.keras", wav, check=False)
  assert out.returncode == 2 and "tracks[f0].hi is 400.0, expected 600.0" in out.stderr
  assert out.stdout == ""
