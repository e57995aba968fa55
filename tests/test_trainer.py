"""trainer.fit / trainer.predict on a tiny dataset built by the real pipeline at 64 px."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from pipeline import demo

from tfds_a2i import Builder

VERSION = str(Builder.VERSION)

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
VOICES = (demo.Voice("hi", "en+f3", 80), demo.Voice("mid", "en-us+m1", 50),
          demo.Voice("lo", "en+m3", 15))


def run(module, *args, check=True, env=ENV):
  out = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                       env=env)
  if check:
    assert out.returncode == 0, out.stderr[-3000:]
  return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
  """(data_dir, corpus folder): 3 voices x 40 utterances, split 70/15/15."""
  root = tmp_path_factory.mktemp("trainer")
  corpus = demo.materialise(demo.DemoCorpus("three", VOICES, 40), str(root / "corpus"))
  run("pipeline.build", "--input", corpus, "--name", "three", "--image_size", "64",
      "--splits", "70/15/15", "--data_dir", str(root / "tfds"))
  return root / "tfds", corpus


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
  data_dir, _ = dataset
  output = tmp_path_factory.mktemp("run")
  run("trainer.fit", "--dataset", "a2i_speakers/three", "--data_dir", str(data_dir),
      "--output", str(output), "--epochs", "25", "--batch_size", "8")
  with open(output / "metrics.json") as f:
    return output, json.load(f)


def test_trains_well_above_chance(trained):
  _, metrics = trained
  assert metrics["test_accuracy"] >= 0.8        # chance is 1/3
  assert metrics["test_examples"] == 18


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
  assert m["dataset"] == {"name": "a2i_speakers", "config": "three", "version": VERSION}
  with open(output / "history.csv") as f:
    assert m["epochs_run"] == len(f.read().strip().splitlines()) - 1 >= 1
  for name in ("confusion_matrix.png", "training_curves.png", "samples.png", "model.keras",
               "encoding.json"):
    assert (output / name).stat().st_size > 0, name
  assert any((output / "logs").rglob("*tfevents*"))
  with open(output / "encoding.json") as f:
    enc = json.load(f)
  assert enc["image_size"] == 64 and enc["channels"] == "rgb"
  assert enc["encoding"]["clip_seconds"] == pytest.approx(4.096)


def test_predict_agrees_with_the_model_on_the_dataset_images(trained, dataset):
  import tensorflow_datasets as tfds

  from trainer.predict import load_run

  output, _ = trained
  data_dir, corpus = dataset
  model, settings = load_run(str(output / "model.keras"))   # safe_mode=True
  test = tfds.as_numpy(tfds.load("a2i_speakers/three", split="test", data_dir=str(data_dir)))
  examples = list(test)[:5]
  files = [os.path.join(corpus, ex["recording"].decode()) for ex in examples]
  out = run("trainer.predict", "--model", str(output / "model.keras"), *files,
            os.path.join(corpus, "nope.wav"), check=False)
  assert out.returncode == 1                                   # one file failed ...
  assert "nope.wav: error:" in out.stderr
  lines = out.stdout.strip().splitlines()
  assert len(lines) == 5                                       # ... the others went on
  for ex, line in zip(examples, lines):
    image = ex["image"][None].astype(np.float32)
    expected = settings["speakers"][int(np.argmax(model.predict(image, verbose=0)))]
    assert line.split("\t")[2] == expected


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
  out = subprocess.run(args, capture_output=True, text=True, env=ENV)
  assert out.returncode == 0, out.stderr[-2000:]
  first_epoch = next(l for l in out.stdout.splitlines() if l.startswith("Epoch "))
  assert first_epoch != "Epoch 1/5"                            # resumed, not restarted
  with open(tmp_path / "metrics.json") as f:
    assert json.load(f)["epochs_run"] == 5


def test_channel_subsets_change_the_model_input(dataset, tmp_path):
  import keras

  from trainer import models  # noqa: F401

  data_dir, _ = dataset
  run("trainer.fit", "--dataset", "a2i_speakers/three", "--data_dir", str(data_dir),
      "--output", str(tmp_path), "--epochs", "1", "--channels", "rb", "--model", "paper")
  model = keras.saving.load_model(str(tmp_path / "model.keras"), safe_mode=True)
  assert model.input_shape == (None, 64, 64, 2)
  with open(tmp_path / "metrics.json") as f:
    m = json.load(f)
  assert (m["channels"], m["model"]) == ("rb", "paper")


def test_missing_dataset_says_how_to_build_it(tmp_path):
  out = run("trainer.fit", "--data_dir", str(tmp_path), "--output", str(tmp_path / "run"),
            check=False)
  assert out.returncode == 2
  assert "python -m pipeline.build" in out.stderr and "Traceback" not in out.stderr


def test_mixed_precision_path_runs_on_cpu():
  """The GPU configuration (mixed float16) builds and trains a step here too,
  with float32 probabilities out."""
  import keras

  from trainer.models import build_model

  keras.mixed_precision.set_global_policy("mixed_float16")
  try:
    for name in ("paper", "cells"):
      model = build_model(name, 64, "rgb", 4)
      model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
      x = np.random.default_rng(0).integers(0, 255, (8, 64, 64, 3)).astype(np.float32)
      model.train_on_batch(x, np.arange(8) % 4)
      probs = model.predict(x, verbose=0)
      assert probs.dtype == np.float32 and np.allclose(probs.sum(axis=1), 1, atol=1e-3)
      assert model.get_layer("embedding").compute_dtype == "float16"
  finally:
    keras.mixed_precision.set_global_policy("float32")


def test_strategy_on_this_machine():
  from trainer.fit import strategy_and_precision
  import tensorflow as tf

  strategy, precision, gpus = strategy_and_precision()
  assert gpus == len(tf.config.list_physical_devices("GPU"))
  assert precision == ("mixed_float16" if gpus else "float32")
  assert strategy.num_replicas_in_sync == max(1, gpus)


def test_ablation_rows_and_outputs(dataset, tmp_path):
  data_dir, _ = dataset
  run("trainer.ablate", "--dataset", "a2i_speakers/three", "--data_dir", str(data_dir),
      "--output", str(tmp_path), "--epochs", "2", "--seeds", "2", "--batch_size", "8")
  with open(tmp_path / "ablation.json") as f:
    rows = json.load(f)
  assert list(rows) == ["R", "G", "B", "RGB", "descriptors_logreg", "logmel_cnn"]
  for row in rows.values():
    assert 0.0 <= row["accuracy_mean"] <= 1.0 and row["accuracy_std"] >= 0.0
    assert len(row["accuracies"]) == 2
    assert row["accuracy_mean"] == pytest.approx(np.mean(row["accuracies"]))
  # Pitch separates these voices: the red statistics alone must do it.
  assert rows["descriptors_logreg"]["accuracy_mean"] >= 0.9
  with open(tmp_path / "ablation_protocol.json") as f:
    protocol = json.load(f)
  assert protocol["notes"]["logmel_cnn"] == "log-mel of the original recordings"
  table = (tmp_path / "ablation.md").read_text()
  assert all(f"| {r} |" in table for r in rows) and (tmp_path / "ablation.png").stat().st_size


def test_scaling_rows_subsets_and_baseline(dataset, tmp_path):
  data_dir, _ = dataset
  run("trainer.scaling", "--dataset", "a2i_speakers/three", "--data_dir", str(data_dir),
      "--output", str(tmp_path), "--counts", "2,all", "--seeds", "2", "--epochs", "2",
      "--batch_size", "8")
  with open(tmp_path / "scaling.json") as f:
    rows = json.load(f)
  assert list(rows) == ["2", "3"]
  assert rows["2"]["chance"] == 0.5 and rows["3"]["chance"] == pytest.approx(1 / 3)
  assert all(len(s) == 2 for s in rows["2"]["speakers"])       # a subset per seed
  with open(tmp_path / "scaling_protocol.json") as f:
    baseline = json.load(f)["descriptors_logreg"]
  assert baseline["3"]["accuracy_mean"] >= 0.9 and set(baseline) == {"2", "3"}
  assert (tmp_path / "scaling.png").stat().st_size and "| 3 |" in (
      tmp_path / "scaling.md").read_text()
  bad = run("trainer.scaling", "--dataset", "a2i_speakers/three", "--data_dir", str(data_dir),
            "--output", str(tmp_path), "--counts", "1,40", check=False)
  assert bad.returncode == 2 and "--counts must lie in 2..3" in bad.stderr


def test_reconstruction_covers_every_clip(dataset, tmp_path):
  data_dir, _ = dataset
  run("trainer.reconstruction", "--dataset", "a2i_speakers/three", "--data_dir", str(data_dir),
      "--output", str(tmp_path))
  with open(tmp_path / "reconstruction.json") as f:
    r = json.load(f)
  assert r["clips"] == len(r["per_clip_db"]) == 120
  assert r["green_rate_hz"] == 64 * 64 / 4.096 == r["returned_rate_hz"]
  # 1 kHz green plane against the original brought to 1 kHz: mu-law 8-bit quality.
  assert r["si_snr_db"]["p05"] >= 20.0 and r["si_snr_db"]["median"] >= 30.0


def test_equal_error_rate_on_known_scores():
  from trainer.verify import equal_error_rate

  same = np.array([1, 1, 1, 0, 0, 0], bool)
  assert equal_error_rate(np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.3]), same)[0] == 0.0
  eer, auc, _, _ = equal_error_rate(np.array([0.9, 0.2, 0.7, 0.8, 0.1, 0.3]), same)
  assert eer == pytest.approx(1 / 3) and auc == pytest.approx(6 / 9)  # 6 of 9 pairs ordered


def test_verification_on_unseen_speakers(tmp_path):
  corpus = demo.materialise(demo.DemoCorpus("eight", demo.VOICES20.voices[:8], 6),
                            str(tmp_path / "corpus"))
  run("pipeline.build", "--input", corpus, "--name", "eight", "--image_size", "64",
      "--split_by", "speaker", "--splits", "50/0/50", "--data_dir", str(tmp_path / "tfds"))
  run("trainer.verify", "--dataset", "a2i_speakers/eight", "--data_dir", str(tmp_path / "tfds"),
      "--output", str(tmp_path / "ver"), "--epochs", "6", "--batch_size", "8")
  with open(tmp_path / "ver" / "verification.json") as f:
    r = json.load(f)
  assert len(r["train_speakers"]) == len(r["test_speakers"]) == 4
  assert not set(r["train_speakers"]) & set(r["test_speakers"])
  n = r["test_clips"]
  assert n == 24 and r["trials"] == n * (n - 1) // 2 and r["target_trials"] == 4 * 15
  assert 0.0 <= r["eer"] < 0.5 and r["auc"] > 0.5
  assert (tmp_path / "ver" / "verification.png").stat().st_size


def test_verification_refuses_shared_speakers(dataset, tmp_path):
  data_dir, _ = dataset
  out = run("trainer.verify", "--dataset", "a2i_speakers/three", "--data_dir", str(data_dir),
            "--output", str(tmp_path), check=False)
  assert out.returncode == 2 and "--split_by speaker" in out.stderr


def test_first_layer_filters(dataset, trained, tmp_path):
  cells, _ = trained
  out = run("trainer.filters", "--model", str(cells / "model.keras"), "--output",
            str(tmp_path), check=False)
  assert out.returncode == 2 and "--model paper" in out.stderr and "Traceback" not in out.stderr
  data_dir, _ = dataset
  run("trainer.fit", "--dataset", "a2i_speakers/three", "--data_dir", str(data_dir),
      "--output", str(tmp_path / "paper"), "--epochs", "1", "--model", "paper")
  run("trainer.filters", "--model", str(tmp_path / "paper" / "model.keras"), "--output",
      str(tmp_path))
  with open(tmp_path / "filters.json") as f:
    planes = json.load(f)["planes"]
  assert list(planes) == ["R", "G", "B"]
  assert sum(p["weight_share"] for p in planes.values()) == pytest.approx(1.0)
  assert all(p["kernels"] == 32 for p in planes.values())
  assert (tmp_path / "filters.png").stat().st_size


@pytest.mark.parametrize("module", ["trainer.scaling", "trainer.verify"])
def test_study_flags_are_checked_before_anything_runs(module, tmp_path):
  out = run(module, "--dataset", "a2i_speakers/none", "--data_dir", str(tmp_path),
            "--channels", "xyz", check=False)
  assert out.returncode == 2 and "invalid choice: 'xyz'" in out.stderr
  assert "Traceback" not in out.stderr
