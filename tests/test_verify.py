"""trainer.verify: equal error rates, classical embeddings, unseen speakers."""

import json

import numpy as np
import pytest

from pipeline import demo
from tests.helpers import cli, run


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
def test_trials_mode_scores_whole_utterances_as_the_field_does(dataset, trained, tmp_path):
  """A generated trials list on the run's corpus, one line naming a file that
  is not there: every other trial scored once in scores.txt, EER and minDCF
  recomputed from those scores, s-norm against the training speakers."""
  from trainer import scoring

  data_dir, corpus = dataset
  run_folder, _ = trained
  cli("pipeline.trials", "--input", corpus, "--output", tmp_path / "trials.txt",
      "--per_file", "1", "--seed", "3")
  every = (tmp_path / "trials.txt").read_text().splitlines()
  lines = [t for t in every if t[0] == "1"][:30] + [t for t in every if t[0] == "0"][:30]
  lines.append("1 hi/missing.wav " + lines[0].split()[1])
  (tmp_path / "trials.txt").write_text("\n".join(lines) + "\n")
  cli("trainer.verify", "--model", run_folder / "model.keras", "--trials",
      tmp_path / "trials.txt", "--audio_root", corpus, "--output", tmp_path / "out",
      "--cohort", "a2i_speakers/three", "--data_dir", data_dir, "--cohort_top", "2")
  with open(tmp_path / "out" / "verification.json") as f:
    v = json.load(f)
  assert v["trials"] == 61 and v["scored_trials"] == 60 and list(v["failed_files"]) == [
      "hi/missing.wav"]
  rows = [line.split() for line in (tmp_path / "out" / "scores.txt").read_text().splitlines()]
  assert [(r[1], r[2], r[3]) for r in rows] == [tuple(line.split()[1:]) + (line.split()[0],)
                                                 for line in lines[:60]]
  scores = np.array([float(r[0]) for r in rows])
  labels = np.array([r[3] == "1" for r in rows])
  assert v["target_trials"] == labels.sum() and 0 < labels.sum() < 60
  # scores.txt holds the final (s-normalised) scores; the JSON's numbers are theirs.
  assert v["snorm"]["eer"] == pytest.approx(scoring.equal_error_rate(scores, labels)[0], abs=1e-6)
  for p in ("0.01", "0.05"):
    assert v["snorm"]["min_dcf"][p] == pytest.approx(scoring.min_dcf(scores, labels, float(p)),
                                                     abs=1e-6)
    assert 0 <= v["min_dcf"][p] <= 1
  assert v["snorm"]["cohort_speakers"] == 3 and v["snorm"]["top"] == 2
  # Three voices the network was trained on: their utterances are told apart.
  assert v["eer"] < 0.25
  assert (tmp_path / "out" / "verification.png").stat().st_size
  assert "| cosine |" in (tmp_path / "out" / "verification.md").read_text()


def test_a_malformed_trials_file_is_one_line(tmp_path):
  (tmp_path / "m.keras").write_text("x")
  (tmp_path / "t.txt").write_text("1 a.wav b.wav\nyes a.wav\n")
  out = cli("trainer.verify", "--model", tmp_path / "m.keras", "--trials", tmp_path / "t.txt",
            "--audio_root", tmp_path, check=False)
  assert out.returncode == 2 and "line 2 is not '1|0 enrol test'" in out.stderr
  assert len(out.stderr.strip().splitlines()) == 1
