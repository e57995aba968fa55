"""trainer.fit / trainer.predict on a tiny dataset built by the real pipeline at 64 px."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from pipeline import demo
from tests.helpers import ENV, cli, tone

from tfds_a2i import Builder

VERSION = str(Builder.VERSION)

VOICES = (demo.Voice("hi", "en+f3", 80), demo.Voice("mid", "en-us+m1", 50),
          demo.Voice("lo", "en+m3", 15))


def run(module, *args, check=True, env=ENV):
  """`python -m module` in a subprocess (builds, and runs that are killed)."""
  out = subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True,
                       text=True, env=env)
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
  cli("trainer.fit", "--dataset", "a2i_speakers/three", "--data_dir", str(data_dir),
      "--output", str(output), "--epochs", "25", "--batch_size", "8")
  with open(output / "metrics.json") as f:
    return output, json.load(f)


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
  # model answers with the default back end, LDA on the embedding, and the
  # network's own softmax is scored beside it.
  weights = m["fusion"]["weights"]
  assert len(weights) == 2 and min(weights) >= 0 and weights != [1.0, 1.0]
  assert round(m["fusion"]["test_accuracy_weights_1"] * 18, 6).is_integer()
  assert m["backend"]["name"] == "lda" and config["settings"]["backend"] == "lda"
  assert round(m["backend"]["test_accuracy_softmax"] * 18, 6).is_integer()
  from trainer.predict import load_run

  model, _ = load_run(str(output / "model.keras"))
  assert model.get_layer("speaker").input is model.get_layer("embedding").output
  assert config["dataset"] == m["dataset"] and config["versions"]["encoding_spec"] == "2.0.0"


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


def test_the_open_set_answer_tells_voices_apart_from_tones_and_strangers():
  """Profiles from one voice's descriptors accept that voice's other clips
  and refuse another voice and a tone, whatever a classifier would say."""
  from pipeline.encode import encode_clip
  from pipeline.espeak import synthesize
  from pipeline.audio import to_working_rate
  from trainer import openset

  def descriptors(voice, pitch, text):
    x, sr = synthesize(text, voice, pitch=pitch)
    return encode_clip(to_working_rate(x, sr)[:65536], 64).descriptors

  texts = [f"Sentence number {i} is read here at an even pace for the test." for i in range(8)]
  known = np.array([descriptors("en+f3", 80, t) for t in texts] +
                   [descriptors("en+m3", 15, t) for t in texts])
  labels = np.array([0] * 8 + [1] * 8)
  model = openset.fit(known[::2], labels[::2], ["hi", "lo"])
  limit = openset.threshold(model, known[1::2], labels[1::2], ["hi", "lo"])
  stranger = descriptors("en-us+m1", 50, texts[0])
  beep = encode_clip(tone(440, 4.096), 64, require_speech=False).descriptors
  d = openset.distances(model, np.array([known[1], stranger, beep]), ["hi", "hi", "hi"])
  assert d[0] <= limit < d[1] < d[2]


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


@pytest.mark.slow
def test_splits_beyond_the_memory_budget_stream_the_same_batches(dataset):
  """Memory does not grow with the corpus: splits that do not fit the cache
  budget are read from disk every epoch, with the same content."""
  from trainer import data

  data_dir, _ = dataset
  image = 64 * 64 * 3
  streamed = data.load("a2i_speakers/three", str(data_dir), "rgb", 8, 0, budget=0)
  only_train = data.load("a2i_speakers/three", str(data_dir), "rgb", 8, 0, budget=84 * image)
  everything = data.load("a2i_speakers/three", str(data_dir), "rgb", 8, 0)
  assert (streamed.cached, only_train.cached) == ((), ("train",))
  assert everything.cached == ("train", "test", "validation")
  assert streamed.train_steps == everything.train_steps == 11          # 84 clips, batches of 8
  for a, b in zip(streamed.test, everything.test):                     # unshuffled: same order
    np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
    np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())


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

  from trainer.backend import fit_lda
  from trainer.models import embeddings_of
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

  import trainer.models  # noqa: F401  (registers the layers for loading)

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


def test_mixed_precision_loss_matches_float32_on_a_fixed_batch():
  """The GPU's mixed float16 computes the same loss as float32, to float16's
  precision, from the same weights on the same batch (checked on CPU)."""
  import keras

  from trainer.models import build_model

  x = np.random.default_rng(2).integers(0, 255, (8, 128, 128, 3)).astype(np.float32)
  y = np.arange(8) % 4
  loss = keras.losses.SparseCategoricalCrossentropy()
  keras.utils.set_random_seed(0)
  reference = build_model("cells", 128, "rgb", 4)
  want = float(loss(y, reference(x, training=False)))
  keras.mixed_precision.set_global_policy("mixed_float16")
  try:
    mixed = build_model("cells", 128, "rgb", 4)
    mixed.set_weights(reference.get_weights())
    got = float(loss(y, mixed(x, training=False)))
  finally:
    keras.mixed_precision.set_global_policy("float32")
  assert got == pytest.approx(want, rel=2e-2)


def test_training_shows_a_progress_bar_on_a_terminal():
  """Keras's per-step bar (with its ETA) on a terminal, one line per epoch in a log."""
  import pty

  code = "from trainer.train import verbosity; print('verbosity', verbosity())"
  piped = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
  assert piped.stdout.strip() == "verbosity 2"
  leader, follower = pty.openpty()
  proc = subprocess.Popen([sys.executable, "-c", code], stdout=follower, stderr=follower, env=ENV)
  proc.wait()
  os.close(follower)
  assert b"verbosity 1" in os.read(leader, 1000)


@pytest.mark.slow
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


def test_precision_follows_the_setting():
  import keras

  from trainer.train import strategy_and_precision

  try:
    for choice in ("float32", "mixed_float16"):
      _, precision, _ = strategy_and_precision(choice)
      assert precision == choice == keras.mixed_precision.global_policy().name
  finally:
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.slow
def test_ablation_rows_and_outputs(dataset, tmp_path):
  data_dir, _ = dataset
  cli("trainer.ablate", "--dataset", "a2i_speakers/three", "--data_dir", str(data_dir),
      "--output", str(tmp_path), "--epochs", "2", "--seeds", "1", "--batch_size", "8",
      "--rows", "RGB,descriptors_logreg,logmel_cnn")   # several seeds: the scaling test
  with open(tmp_path / "ablation.json") as f:
    rows = json.load(f)
  assert list(rows) == ["RGB", "descriptors_logreg", "logmel_cnn"]
  with open(tmp_path / "ablation_protocol.json") as f:
    protocol = json.load(f)
  assert protocol["test_examples"] == 18
  for row in rows.values():
    # One accuracy per seed, a count of the 18 test clips.
    assert len(row["accuracies"]) == 1 and row["accuracy_std"] == 0.0
    assert round(row["accuracies"][0] * 18, 6).is_integer()
  # Pitch separates these voices: the red statistics alone must do it.
  assert rows["descriptors_logreg"]["accuracy_mean"] >= 0.9
  assert protocol["notes"]["logmel_cnn"] == "log-mel of the original recordings"
  table = (tmp_path / "ablation.md").read_text()
  assert all(f"| {r} |" in table for r in rows) and (tmp_path / "ablation.png").stat().st_size
  # The same study again with one more row: the finished rows are kept, not
  # retrained, and the table gains the classical eGeMAPS baseline.
  out = cli("trainer.ablate", "--dataset", "a2i_speakers/three", "--data_dir", str(data_dir),
            "--output", str(tmp_path), "--epochs", "2", "--seeds", "1", "--batch_size", "8",
            "--rows", "RGB,descriptors_logreg,egemaps_logreg,logmel_cnn")
  assert out.stdout.count("kept from") == 3 and "RGB seed" not in out.stdout
  with open(tmp_path / "ablation.json") as f:
    again = json.load(f)
  assert list(again) == ["RGB", "descriptors_logreg", "egemaps_logreg", "logmel_cnn"]
  assert all(again[r] == rows[r] for r in rows)
  assert again["egemaps_logreg"]["accuracy_mean"] >= 0.9
  with open(tmp_path / "ablation_protocol.json") as f:
    notes = json.load(f)["notes"]
  assert notes["logmel_cnn"] == "log-mel of the original recordings"
  assert notes["egemaps_logreg"].startswith("openSMILE eGeMAPSv02")


@pytest.mark.slow
def test_scaling_rows_subsets_and_baseline(dataset, tmp_path):
  data_dir, _ = dataset
  cli("trainer.scaling", "--dataset", "a2i_speakers/three", "--data_dir", str(data_dir),
      "--output", str(tmp_path), "--counts", "2,all", "--seeds", "2", "--epochs", "2",
      "--batch_size", "8")
  with open(tmp_path / "scaling.json") as f:
    rows = json.load(f)
  assert list(rows) == ["2", "3"]
  assert rows["2"]["chance"] == 0.5 and rows["3"]["chance"] == pytest.approx(1 / 3)
  assert all(len(s) == 2 for s in rows["2"]["speakers"])       # a subset per seed
  accuracies = rows["3"]["accuracies"]                          # one per seed, of 18 clips
  assert len(accuracies) == 2 and all(round(a * 18, 6).is_integer() for a in accuracies)
  assert rows["3"]["accuracy_std"] == pytest.approx(np.std(accuracies, ddof=1))
  with open(tmp_path / "scaling_protocol.json") as f:
    baseline = json.load(f)["descriptors_logreg"]
  assert baseline["3"]["accuracy_mean"] >= 0.9 and set(baseline) == {"2", "3"}
  assert (tmp_path / "scaling.png").stat().st_size and "| 3 |" in (
      tmp_path / "scaling.md").read_text()
  bad = cli("trainer.scaling", "--dataset", "a2i_speakers/three", "--data_dir", str(data_dir),
            "--output", str(tmp_path), "--counts", "1,40", check=False)
  assert bad.returncode == 2 and "--counts must lie in 2..3" in bad.stderr


@pytest.mark.slow
def test_reconstruction_covers_every_clip(dataset, tmp_path):
  data_dir, _ = dataset
  cli("trainer.reconstruction", "--dataset", "a2i_speakers/three", "--data_dir", str(data_dir),
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


def test_classical_verification_scores_every_pair_of_test_clips():
  from trainer.verify import classical_scores, equal_error_rate

  rng = np.random.default_rng(0)
  centre = rng.normal(size=(8, 5)) * 3
  x = np.concatenate([centre[:4].repeat(10, 0), rng.normal(size=(40, 3))], axis=1)
  y = np.arange(4).repeat(10)
  xt = np.concatenate([centre[4:].repeat(5, 0), rng.normal(size=(20, 3))], axis=1)
  xt[:, :5] += rng.normal(size=(20, 5)) * 0.1
  yt = np.arange(4, 8).repeat(5)
  x[3, 6] = np.nan                                  # a missing value takes the median
  scores, same = classical_scores(x, y, xt, yt, lda=False)
  assert len(scores) == 20 * 19 // 2 and same.sum() == 4 * 10
  # Unseen speakers far apart in the descriptors' space: every trial right.
  assert equal_error_rate(scores, same)[0] < 0.1
  scores, same = classical_scores(x, y, xt, yt, lda=True)
  assert len(scores) == 190 and np.isfinite(scores).all()


@pytest.mark.slow
def test_verification_on_unseen_speakers(tmp_path):
  corpus = demo.materialise(demo.DemoCorpus("eight", demo.VOICES20.voices[:8], 6),
                            str(tmp_path / "corpus"))
  run("pipeline.build", "--input", corpus, "--name", "eight", "--image_size", "64",
      "--split_by", "speaker", "--splits", "50/0/50", "--data_dir", str(tmp_path / "tfds"))
  cli("trainer.verify", "--dataset", "a2i_speakers/eight", "--data_dir", str(tmp_path / "tfds"),
      "--output", str(tmp_path / "ver"), "--epochs", "6", "--batch_size", "8")
  with open(tmp_path / "ver" / "verification.json") as f:
    r = json.load(f)
  assert len(r["train_speakers"]) == len(r["test_speakers"]) == 4
  assert not set(r["train_speakers"]) & set(r["test_speakers"])
  n = r["test_clips"]
  assert n == 24 and r["trials"] == n * (n - 1) // 2 and r["target_trials"] == 4 * 15
  assert 0.0 <= r["eer"] < 0.5 and r["auc"] > 0.5
  # The same trials on the classical embeddings: eight synthetic voices are
  # told apart by their descriptors.
  assert set(r["baselines"]) == {"descriptors_standardised", "descriptors_lda",
                                 "egemaps_standardised", "egemaps_lda"}
  assert all(0.0 <= b["eer"] < 0.35 and b["auc"] > 0.7 for b in r["baselines"].values())
  assert (tmp_path / "ver" / "verification.png").stat().st_size


@pytest.mark.slow
def test_verification_refuses_shared_speakers(dataset, tmp_path):
  data_dir, _ = dataset
  out = cli("trainer.verify", "--dataset", "a2i_speakers/three", "--data_dir", str(data_dir),
            "--output", str(tmp_path), check=False)
  assert out.returncode == 2 and "--split_by speaker" in out.stderr


@pytest.mark.slow
def test_first_layer_filters(dataset, trained, tmp_path):
  cells, _ = trained
  cli("trainer.filters", "--model", str(cells / "model.keras"), "--output", str(tmp_path / "c"))
  with open(tmp_path / "c" / "filters.json") as f:
    bank = json.load(f)["green_filterbank"]
  # 64 px: a 1 kHz waveform; 48 filters, each peaking within its band.
  assert bank["rate_hz"] == 1000 and bank["filters"] == 48
  assert sum(bank["filters_per_band"].values()) == 48
  assert bank["peak_hz"] == sorted(bank["peak_hz"]) and 0 <= bank["peak_hz"][0]
  assert bank["peak_hz"][-1] <= 500
  fresh = json.load(open(tmp_path / "c" / "filters.json"))["at_initialisation"]
  assert fresh["filters"] == 48 and fresh["peak_hz"] != bank["peak_hz"]
  assert (tmp_path / "c" / "filters.png").stat().st_size
  data_dir, _ = dataset
  cli("trainer.fit", "--dataset", "a2i_speakers/three", "--data_dir", str(data_dir),
      "--output", str(tmp_path / "paper"), "--epochs", "1", "--model", "paper")
  cli("trainer.filters", "--model", str(tmp_path / "paper" / "model.keras"), "--output",
      str(tmp_path))
  with open(tmp_path / "filters.json") as f:
    planes = json.load(f)["planes"]
  assert list(planes) == ["R", "G", "B"]
  assert sum(p["weight_share"] for p in planes.values()) == pytest.approx(1.0)
  assert all(p["kernels"] == 32 for p in planes.values())
  assert (tmp_path / "filters.png").stat().st_size


def test_filterbank_description_finds_a_known_filter():
  from trainer.filters import describe_filterbank

  rate, taps = 4000.0, 64
  t = np.arange(taps) / rate
  tone = lambda f: np.hanning(taps) * np.cos(2 * np.pi * f * t)
  kernel = np.stack([tone(1500.0), tone(250.0), tone(700.0)], axis=-1)[:, None, :]
  stats = describe_filterbank(kernel, rate)
  assert stats["peak_hz"] == pytest.approx([250.0, 700.0, 1500.0], abs=rate / 1024)
  assert stats["filters_per_band"] == {"0-300 Hz": 1, "300-1000 Hz": 1, "1000-2000 Hz": 1}
  # A 64-tap Hann window: main lobe 4 bins wide, so about 2 bins above -6 dB.
  assert all(100 < w < 200 for w in stats["bandwidth_hz"])


@pytest.mark.parametrize("module", ["trainer.scaling", "trainer.verify"])
def test_study_flags_are_checked_before_anything_runs(module, tmp_path):
  out = cli(module, "--dataset", "a2i_speakers/none", "--data_dir", str(tmp_path),
            "--channels", "xyz", check=False)
  assert out.returncode == 2 and "invalid choice: 'xyz'" in out.stderr


def test_egemaps_functionals_measure_a_known_pitch():
  from trainer import egemaps

  t = np.arange(2 * egemaps.RATE) / egemaps.RATE
  harmonics = lambda f: sum(np.sin(2 * np.pi * k * f * t) / k for k in range(1, 6))
  waves = np.stack([0.3 * harmonics(f) for f in (110.0, 220.0)]).astype(np.float32)
  names, values = egemaps.functionals(waves)
  assert len(names) == 88 and values.shape == (2, 88)
  f0 = values[:, names.index("F0semitoneFrom27.5Hz_sma3nz_amean")]
  # openSMILE reports f0 in semitones above 27.5 Hz: 24 for 110 Hz, 36 for 220 Hz.
  assert f0 == pytest.approx([24.0, 36.0], abs=0.5)
