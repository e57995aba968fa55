"""trainer.fit on a tiny dataset built by the real pipeline at 64 px: metrics, run
folders, replays, resumes, back ends, and the encoding spec carried into the model."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from pipeline.spec import SPEC_VERSION
from tests.conftest import THREE_VOICES as VOICES
from tests.helpers import ENV, cli, command_without_tensorflow, run
from tfds_a2i import Builder

VERSION = str(Builder.VERSION)


@pytest.mark.slow
def test_trains_well_above_chance(trained):
  _, metrics = trained
  assert metrics["test_accuracy"] >= 0.8        # chance is 1/3
  assert metrics["test_examples"] == 18


@pytest.mark.slow
def test_metrics_schema_and_consistency(trained, dataset):
  output, m = trained
  assert isinstance(m["test_accuracy"], float)
  assert m["speakers"] == sorted(v.speaker for v in VOICES)   # ClassLabel order
  assert set(m["per_speaker"]) == set(m["speakers"])
  for s in m["per_speaker"].values():
    assert set(s) == {"precision", "recall", "f1", "support"}
  cm = np.array(m["confusion_matrix"])
  assert cm.shape == (3, 3) and cm.sum() == m["test_examples"]
  assert [m["per_speaker"][s]["support"] for s in m["speakers"]] == cm.sum(axis=1).tolist()
  assert m["test_accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
  assert m["channels"] == "rgb"
  assert {k: m["dataset"][k] for k in ("name", "config", "version")} == {
      "name": "a2i_speakers", "config": "three", "version": VERSION}
  assert len(m["dataset"]["fingerprint"]) == 16
  with open(output / "history.csv") as f:
    assert m["epochs_run"] == len(f.read().strip().splitlines()) - 1 >= 1
  for name in ("confusion_matrix.png", "training_curves.png", "samples.png", "model.keras",
               "encoding.json", "config.json", "speakers.json"):
    assert (output / name).stat().st_size > 0, name
  assert any((output / "logs").rglob("*tfevents*"))
  with open(output / "encoding.json") as f:
    enc = json.load(f)
  assert enc["image_size"] == 64 and enc["channels"] == "rgb"
  assert enc["encoding"]["clip_seconds"] == pytest.approx(4.096)
  with open(output / "config.json") as f:
    config = json.load(f)
  assert config["settings"]["dataset"] == "a2i_speakers/three"
  assert config["settings"]["epochs"] == 25 and config["settings"]["batch_size"] == 8
  # The network's two plane groups fused with weights fitted on validation;
  # the same network with weights of 1 is scored for comparison. The saved
  # model answers with the back end the default (auto) chose on validation,
  # by its rule, and the three candidates are scored beside it.
  weights = m["fusion"]["weights"]
  assert len(weights) == 2 and min(weights) >= 0 and weights != [1.0, 1.0]
  assert round(m["fusion"]["test_accuracy_weights_1"] * 18, 6).is_integer()
  b = m["backend"]
  assert b["name"] == "auto" and config["settings"]["backend"] == "auto"
  right = {k: v["right"] for k, v in b["validation"].items()}
  best = "softmax" if right["softmax"] > right["lda"] else "lda"
  assert b["chosen"] == (best if right[best] - right["average"] >= b["margin_clips"]
                         else "average")
  assert b["validation"]["average"]["clips"] == m["test_examples"] == 18   # 15 % of 120 each
  assert m["test_accuracy"] == b[f"test_accuracy_{b['chosen']}"]
  assert all(round(b[f"test_accuracy_{k}"] * 18, 6).is_integer()
             for k in ("softmax", "lda", "average"))
  from trainer.predict import load_run

  # The saved model is the chosen back end: LDA reads the embedding alone,
  # the softmax the fused evidence, the average both.
  model, _ = load_run(str(output / "model.keras"))
  names = {layer.name for layer in model.layers}
  assert ("lda_log_posterior" in names) == (b["chosen"] == "average")
  assert ("fusion" in names) == (b["chosen"] != "lda")
  if b["chosen"] == "lda":
    assert model.get_layer("speaker").input is model.get_layer("embedding").output
  assert config["dataset"] == m["dataset"] and config["versions"]["encoding_spec"] == SPEC_VERSION


@pytest.mark.slow
def test_each_test_clip_is_listed_with_the_saved_models_answer(trained, dataset):
  """test_predictions.csv: every test clip of the dataset once, with its
  speaker, and the saved model's answer recomputed here from the clip's
  image; the wrong ones first, as many as the confusion matrix's."""
  import csv

  import tensorflow_datasets as tfds

  from trainer.predict import load_run

  output, m = trained
  assert m["test_predictions"] == "test_predictions.csv"
  with open(output / "test_predictions.csv", newline="") as f:
    rows = list(csv.DictReader(f))
  data_dir, _ = dataset
  clips = {(ex["recording"].decode(), int(ex["clip_index"])): ex for ex in tfds.as_numpy(
      tfds.builder("a2i_speakers/three", data_dir=str(data_dir)).as_dataset(split="test"))}
  assert len(rows) == m["test_examples"] == len(clips)
  assert {(r["recording"], int(r["clip_index"])) for r in rows} == set(clips)
  model, _ = load_run(str(output / "model.keras"))
  keys = [(r["recording"], int(r["clip_index"])) for r in rows]
  prob = np.asarray(model.predict_on_batch(np.stack([clips[k]["image"] for k in keys])))
  for r, k, p in zip(rows, keys, prob):
    assert r["speaker"] == m["speakers"][int(clips[k]["speaker"])]
    assert r["predicted"] == m["speakers"][int(p.argmax())]
    assert float(r["probability"]) == pytest.approx(float(p.max()), abs=1e-3)
    assert r["right"] == str(int(r["predicted"] == r["speaker"]))
  wrong = [r["right"] == "0" for r in rows]
  assert sum(wrong) == m["test_examples"] - np.trace(np.array(m["confusion_matrix"]))
  assert wrong == sorted(wrong, reverse=True)
  # One rate and one voice per speaker here: the build report's checks name
  # no recording, so every clip is among the rest, counted as the rows are.
  for column, key, name in (("rare_rate", "test_by_sample_rate", "rare_for_their_speaker"),
                            ("unlike_pitch", "test_by_pitch", "unlike_their_speakers_training"),
                            ("unlike_pitch", "test_by_build_checks", "named_by_either")):
    assert {r[column] for r in rows} == {"0"}
    assert m[key][name] == {"recordings": 0, "clips": 0, "right": 0, "accuracy": None}
    assert m[key]["the_rest"]["clips"] == len(rows)
    assert m[key]["the_rest"]["right"] == len(rows) - sum(wrong)
    assert m[key]["the_rest"]["recordings"] == len({r["recording"] for r in rows})


@pytest.mark.slow
def test_a_run_replays_from_its_config_and_folders_are_not_mixed(trained, dataset, tmp_path):
  """--config RUN/config.json trains the same settings again (into another
  folder); a folder holding another run (other model, dataset...) is refused
  before anything is trained."""
  output, _ = trained
  data_dir, _ = dataset
  other = cli("trainer.fit", "--dataset", "a2i_speakers/three", "--data_dir", str(data_dir),
              "--output", str(output), "--model", "paper", check=False)
  assert other.returncode == 2 and "holds another run (model=cells" in other.stderr
  short = tmp_path / "short"
  cli("trainer.fit", "--dataset", "a2i_speakers/three", "--data_dir", str(data_dir),
      "--output", str(short), "--epochs", "2", "--batch_size", "8", "--seed", "3",
      "--backend", "softmax")
  cli("trainer.fit", "--config", str(short / "config.json"), "--output", str(tmp_path / "again"))
  with open(short / "config.json") as f, open(tmp_path / "again" / "config.json") as g:
    first, second = json.load(f), json.load(g)
  assert {**first["settings"], "output": None} == {**second["settings"], "output": None}
  assert first["dataset"] == second["dataset"] and second["settings"]["backend"] == "softmax"
  with open(tmp_path / "again" / "metrics.json") as f:
    again = json.load(f)
  assert again["epochs_run"] == 2 and again["backend"] == {"name": "softmax"}
  # With the network's softmax, the fitted fusion weights are the saved model's.
  from trainer.predict import load_run

  model, _ = load_run(str(tmp_path / "again" / "model.keras"))
  np.testing.assert_allclose(model.get_layer("fusion").scale.numpy(),
                             again["fusion"]["weights"], rtol=1e-6)
  # A config.json from before the back end was a setting replays with the softmax.
  del first["settings"]["backend"]
  with open(tmp_path / "old.json", "w") as f:
    json.dump(first, f)
  from trainer.config import TrainConfig

  assert TrainConfig.load(str(tmp_path / "old.json")).backend == "softmax"


@pytest.mark.slow
def test_resume_after_kill(dataset, tmp_path):
  data_dir, _ = dataset
  args = [sys.executable, "-m", "trainer.fit", "--dataset", "a2i_speakers/three",
          "--data_dir", str(data_dir), "--output", str(tmp_path), "--epochs", "5",
          "--batch_size", "8", "--patience", "50"]
  proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=ENV)
  history = tmp_path / "history.csv"
  deadline = time.time() + 240
  while time.time() < deadline and proc.poll() is None:
    if history.exists() and len(history.read_text().strip().splitlines()) >= 3:  # 2 epochs
      break
    time.sleep(0.2)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert len(history.read_text().strip().splitlines()) < 6, "finished before it was killed"
  # The killed run already predicts, with its best checkpoint so far.
  wav = next(p for p in (pathlib.Path(dataset[1]) / "hi").iterdir())
  early = cli("trainer.predict", "--model", str(tmp_path / "model.keras"), str(wav))
  assert early.stdout.split("\t")[2] in [v.speaker for v in VOICES]
  out = cli(*args[2:])
  first_epoch = next(l for l in out.stdout.splitlines() if l.startswith("Epoch "))
  assert first_epoch != "Epoch 1/5"                            # resumed, not restarted
  with open(tmp_path / "metrics.json") as f:
    assert json.load(f)["epochs_run"] == 5


@pytest.mark.slow
def test_lda_backend_scores_with_the_training_clips_speakers(dataset, tmp_path):
  """--backend lda: the saved model's output is LDA fitted on the training
  split's embeddings (recomputed here from the dataset), metrics.json gives
  its test accuracy and the network softmax's beside it; --pooling is part
  of what makes a folder another run."""
  import tensorflow_datasets as tfds

  from trainer.heads import fit_lda
  from trainer.heads import embeddings_of
  from trainer.predict import load_run

  data_dir, _ = dataset
  cli("trainer.fit", "--dataset", "a2i_speakers/three", "--data_dir", str(data_dir),
      "--output", str(tmp_path), "--epochs", "3", "--batch_size", "8",
      "--pooling", "voiced", "--backend", "lda")
  with open(tmp_path / "metrics.json") as f:
    m = json.load(f)
  assert m["pooling"] == "voiced" and m["backend"]["name"] == "lda"
  assert 0 <= m["backend"]["test_accuracy_softmax"] <= 1
  model, _ = load_run(str(tmp_path / "model.keras"))
  assert model.get_layer("soft_histogram").output.shape[-1] == 32

  def split(name):
    ds = tfds.load("a2i_speakers/three", split=name, data_dir=str(data_dir), as_supervised=False)
    return ds.map(lambda ex: (ex["image"], ex["speaker"])).batch(16)

  e, y = embeddings_of(model, split("train"))
  w, b = fit_lda(e, y, 3)
  test_e, test_y = embeddings_of(model, split("test"))
  scores = test_e @ w + b
  probs = np.concatenate([model.predict(x.numpy().astype(np.float32), verbose=0)
                          for x, _ in split("test")])
  np.testing.assert_allclose(probs.argmax(axis=1), scores.argmax(axis=1))
  assert m["test_accuracy"] == pytest.approx((scores.argmax(axis=1) == test_y).mean())
  other = cli("trainer.fit", "--dataset", "a2i_speakers/three", "--data_dir", str(data_dir),
              "--output", str(tmp_path), "--epochs", "3", "--batch_size", "8", check=False)
  assert other.returncode == 2 and "pooling=voiced" in other.stderr


@pytest.mark.slow
def test_channel_subsets_change_the_model_input(dataset, tmp_path):
  import keras

  import trainer.layers  # noqa: F401  (registers the layers for loading)

  data_dir, _ = dataset
  cli("trainer.fit", "--dataset", "a2i_speakers/three", "--data_dir", str(data_dir),
      "--output", str(tmp_path), "--epochs", "1", "--channels", "rb", "--model", "paper")
  model = keras.saving.load_model(str(tmp_path / "model.keras"), safe_mode=True)
  assert model.input_shape == (None, 64, 64, 2)
  with open(tmp_path / "metrics.json") as f:
    m = json.load(f)
  assert (m["channels"], m["model"]) == ("rb", "paper")


@pytest.mark.parametrize("dataset,command", [
    ("a2i_speakers", "python -m pipeline.build --runner=DirectRunner"),
    ("a2i_speakers/voices20_128", "python -m pipeline.build --demo voices20 --image_size 128"),
    ("a2i_speakers/dev-clean_256",
     "python -m pipeline.build --input YOUR_CORPUS/dev-clean --image_size 256"),
])
def test_missing_dataset_says_how_to_build_it(tmp_path, dataset, command):
  out = cli("trainer.fit", "--dataset", dataset, "--data_dir", str(tmp_path), "--output",
            str(tmp_path / "run"), check=False)
  assert out.returncode == 2
  assert f"build it with: {command} --data_dir {tmp_path}" in out.stderr


@pytest.mark.slow
def test_a_command_that_fails_says_one_line_and_nothing_else(tmp_path):
  """As a user runs it (no TF_CPP_MIN_LOG_LEVEL of their own): no CUDA or
  CPU-feature chatter around the one line that matters."""
  env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
  out = run("trainer.fit", "--dataset", "a2i_speakers/none", "--data_dir", tmp_path,
            "--output", tmp_path / "run", check=False, env=env)
  assert out.returncode == 2
  assert out.stderr.splitlines() == [
      f"error: dataset a2i_speakers/none is not built in {tmp_path}; build it with: "
      f"python -m pipeline.build --input YOUR_CORPUS/none --data_dir {tmp_path}"]


def test_voiced_pooling_needs_the_cells_model_reading_blue(capsys):
  """--pooling voiced pools the blue plane's time courses: with the paper's
  CNN or without blue it would change nothing, so it is refused at once."""
  from trainer import fit
  from trainer.config import TrainConfig

  assert TrainConfig(pooling="voiced", channels="rb").checked().pooling == "voiced"
  for flags in (["--model", "paper"], ["--channels", "rg"]):
    with pytest.raises(SystemExit) as stop:
      fit.main(["--pooling", "voiced", *flags])
    assert stop.value.code == 2
    assert "--pooling voiced pools the blue plane" in capsys.readouterr().err


@pytest.mark.slow
def test_a_dataset_of_another_clip_length_and_size_trains_and_predicts(dataset, tmp_path):
  """Built with --clip_seconds 2.048 at 128 px: the trained network reads
  the dataset's own spec (frames per clip, clip length), the run records it,
  and predict encodes new audio with it and agrees with the model."""
  import tensorflow_datasets as tfds

  from trainer.layers import CellReader, GreenWaveform
  from trainer.predict import load_run

  _, corpus = dataset
  run("pipeline.build", "--input", corpus, "--name", "short", "--image_size", "128",
      "--clip_seconds", "2.048", "--splits", "70/15/15", "--data_dir", str(tmp_path / "tfds"))
  cli("trainer.fit", "--dataset", "a2i_speakers/short", "--data_dir", str(tmp_path / "tfds"),
      "--output", str(tmp_path / "run"), "--epochs", "12", "--batch_size", "8")
  with open(tmp_path / "run" / "metrics.json") as f:
    metrics = json.load(f)
  with open(tmp_path / "run" / "encoding.json") as f:
    encoding = json.load(f)
  assert encoding["encoding"]["clip_seconds"] == 2.048 and encoding["image_size"] == 128
  assert metrics["test_accuracy"] >= 0.8                        # chance is 1/3
  model, settings = load_run(str(tmp_path / "run" / "model.keras"))
  assert settings["spec"].clip_frames == 205
  reader = next(layer for layer in model.layers if isinstance(layer, CellReader))
  green = next(layer for layer in model.layers if isinstance(layer, GreenWaveform))
  assert reader.frames == 205 and green.clip_seconds == 2.048
  test = list(tfds.as_numpy(tfds.load("a2i_speakers/short", split="test",
                                      data_dir=str(tmp_path / "tfds"))))
  one_clip = [ex for ex in test if ex["clip_index"] == 0][:4]
  files = [os.path.join(corpus, ex["recording"].decode()) for ex in one_clip]
  out = cli("trainer.predict", "--model", str(tmp_path / "run" / "model.keras"), "--json", *files)
  for ex, line in zip(one_clip, out.stdout.strip().splitlines()):
    answer = json.loads(line)
    first = answer["clips"][0]
    expected = settings["speakers"][int(np.argmax(model.predict(
        ex["image"][None].astype(np.float32), verbose=0)))]
    assert first["speaker"] == expected and first["start_seconds"] == 0.0
    assert all(c["start_seconds"] == 2.048 * c["index"] for c in answer["clips"])


@pytest.mark.slow
def test_the_jax_backend_trains_without_tensorflow_to_the_same_accuracy(
    dataset, dataset_array_record, trained, tmp_path):
  """KERAS_BACKEND=jax where TensorFlow is not installed: the input comes
  from the array_record build through tfds.data_source, with the same
  networks, protocol and run folder (LDA back end, fusion, config.json and
  metrics.json naming backend and device); test accuracy within two of the
  18 test clips of the TensorFlow run's; the model then predicts under
  TensorFlow. A TFRecord build is refused there in one line."""
  data_dir, corpus = dataset
  _, tf_metrics = trained
  env = dict(ENV, KERAS_BACKEND="jax")
  run_folder = tmp_path / "run"
  out = command_without_tensorflow(
      "trainer.fit", "--dataset", "a2i_speakers/three", "--data_dir", dataset_array_record,
      "--output", run_folder, "--epochs", "25", "--batch_size", "8", folder=tmp_path, env=env)
  assert "test accuracy" in out.stdout
  with open(run_folder / "metrics.json") as f:
    m = json.load(f)
  with open(run_folder / "config.json") as f:
    config = json.load(f)
  assert m["keras_backend"] == "jax" == config["versions"]["keras_backend"]
  assert config["versions"]["tensorflow"] is None and m["device"] == "CPU"
  assert tf_metrics["keras_backend"] == "tensorflow"
  assert m["backend"]["name"] == "auto" and len(m["fusion"]["weights"]) == 2
  assert abs(m["test_accuracy"] - tf_metrics["test_accuracy"]) <= 2 / 18 + 1e-9
  assert m["test_accuracy"] >= 0.8
  with open(run_folder / "test_predictions.csv") as f:      # read through tfds.data_source
    assert len(f.read().strip().splitlines()) == 1 + m["test_examples"]
  wav = sorted((pathlib.Path(corpus) / "lo").iterdir())[0]
  out = cli("trainer.predict", "--model", run_folder / "model.keras", wav)
  assert out.stdout.split("\t")[2] in [v.speaker for v in VOICES]
  refused = command_without_tensorflow(
      "trainer.fit", "--dataset", "a2i_speakers/three", "--data_dir", data_dir, "--output",
      tmp_path / "refused", folder=tmp_path, env=env, check=False)
  assert refused.returncode == 2
  assert refused.stderr.strip().splitlines() == [
      f"error: a2i_speakers/three/{VERSION} is stored as tfrecord, which only TensorFlow "
      "reads, and "
      "TensorFlow is not installed: install it, or rebuild the dataset with "
      "--file_format array_record"]
