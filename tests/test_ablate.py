"""trainer.ablate: channel rows and baselines, written and resumed."""

import json

import pytest

from tests.helpers import cli


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


def test_speech_only_log_mel_keeps_the_speech_frames():
  """benchmarks/narrowband_errors.py's speech-only TDNN input: the log-mel
  frames of a tone burst in faint noise stay as they were, the pauses
  around it go to the padding's level, frame for frame."""
  import numpy as np

  from benchmarks.narrowband_errors import PADDING_DB, speech_only
  from trainer.baselines import log_mel

  rate = 16000
  rng = np.random.default_rng(0)
  wave = 1e-3 * rng.standard_normal(2 * rate)            # -60 dBFS background
  t = np.arange(rate // 2) / rate
  wave[rate // 2:rate] += 0.3 * np.sin(2 * np.pi * 220 * t)   # 0.5-1.0 s
  wave = wave[None].astype(np.float32)
  mel = log_mel(wave, rate)
  out = speech_only(mel, wave)
  kept = (out[0, :, :, 0] != PADDING_DB).all(axis=0)
  masked = (out[0, :, :, 0] == PADDING_DB).all(axis=0)
  assert (kept | masked).all()
  frames = np.flatnonzero(kept)                          # 10 ms frames, centred
  assert abs(frames[0] - 50) <= 3 and abs(frames[-1] - 100) <= 3
  assert len(frames) == frames[-1] - frames[0] + 1       # one stretch: the burst
  np.testing.assert_array_equal(out[0, :, kept], mel[0, :, kept])
  assert (mel[0, :, masked] > PADDING_DB + 20).all()     # the noise was there


@pytest.mark.slow
def test_logmel_batch_order_is_the_runs_own(dataset):
  """The log-mel TDNN's training batches come in an order drawn from its own
  seed, whatever run came before it in the process."""
  import keras
  import numpy as np

  from trainer import baselines
  from trainer.data import open_dataset

  data_dir, _ = dataset
  ds = open_dataset("a2i_speakers/three", str(data_dir))

  def order(seed, before):
    keras.utils.set_random_seed(before)        # the seed of a run trained earlier
    splits, _ = baselines.logmel_splits(ds, str(data_dir), 8, seed)
    return np.concatenate([np.asarray(labels) for _, labels in splits.train])

  first = order(1, before=3)
  np.testing.assert_array_equal(first, order(1, before=7))
  assert len(first) == ds.info.splits["train"].num_examples
  assert not np.array_equal(first, order(2, before=3))   # shuffled, by the seed given
