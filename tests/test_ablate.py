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
