"""trainer.scaling: accuracy against the number of speakers."""

import json

import numpy as np
import pytest

from tests.helpers import cli


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
