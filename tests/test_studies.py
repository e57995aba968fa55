"""benchmarks/ studies: augmented_training.py's copies, speaker_outliers.py's
rule, real_defaults.py's manifests."""

import csv
import json

import numpy as np
import soundfile as sf

from tests.helpers import SR, tone, write_wav


def test_a_copy_has_the_noise_and_level_it_was_drawn_with():
  """Without reverberation (drawn half of the time) a copy is the recording
  plus noise at the drawn SNR, scaled to the drawn peak; the same seed draws
  the same copy."""
  from benchmarks.augmented_training import augment

  x = tone(200, 1.0, amp=0.3)
  for seed in range(40):
    y, drawn = augment(x, SR, np.random.default_rng(seed))
    again, _ = augment(x, SR, np.random.default_rng(seed))
    np.testing.assert_array_equal(y, again)
    assert abs(20 * np.log10(np.abs(y).max()) - drawn["peak_dbfs"]) < 0.01
    if drawn["rt60_seconds"] == 0.0:
      gain = np.dot(y, x) / np.dot(x, x)          # the recording's share of the copy
      noise = y - gain * x
      snr = 10 * np.log10(np.mean((gain * x) ** 2) / np.mean(noise ** 2))
      assert abs(snr - drawn["snr_db"]) < 0.3, (seed, snr, drawn)
  assert 10 <= drawn["snr_db"] <= 30 and -30 <= drawn["peak_dbfs"] <= -3


def test_a_level_copy_is_the_recording_scaled():
  from benchmarks.augmented_training import level

  x = tone(200, 1.0, amp=0.3) + 0.01 * np.random.default_rng(0).standard_normal(SR)
  y, drawn = level(x, SR, np.random.default_rng(3))
  gain = np.abs(y).max() / np.abs(x).max()
  np.testing.assert_allclose(y, x * gain, rtol=1e-5, atol=1e-7)   # nothing but the level
  assert abs(20 * np.log10(np.abs(y).max()) - drawn["peak_dbfs"]) < 0.01


def test_copies_are_made_of_training_recordings_only_and_keep_their_group(tmp_path):
  """Each training recording gets its copies, in its own group (so the split
  dealt by group puts them in training); validation and test recordings and
  files the build refused get none. A copy is written at the recording's
  rate when that is under the working rate."""
  from benchmarks.augmented_training import augmented_manifest

  rows = [("a/train.wav", "train", "encoded", 16000), ("a/val.wav", "validation", "encoded", 16000),
          ("a/test.wav", "test", "encoded", 16000), ("a/narrow.wav", "train", "encoded", 8000),
          ("a/refused.wav", None, "failed", 16000)]
  for path, _, _, rate in rows:
    write_wav(tmp_path / "corpus" / path, tone(150, 1.0, amp=0.3, sr=rate), sr=rate)
  with open(tmp_path / "corpus" / "all.csv", "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["path", "speaker"])
    writer.writerows([(path, "ana") for path, *_ in rows])
  base = tmp_path / "base"
  base.mkdir()
  (base / "build_report.json").write_text(json.dumps({"files": [
      {"file": path, "split": split, "status": status} for path, split, status, _ in rows]}))
  manifest, n = augmented_manifest(str(base), str(tmp_path / "corpus" / "all.csv"), 2)
  with open(manifest) as f:
    listed = list(csv.DictReader(f))
  assert n == 4 and len(listed) == len(rows) + 4
  copies = {r["path"]: r["group"] for r in listed if r["path"].startswith("augmented/")}
  assert copies == {"augmented/a/train.1.wav": "a/train.wav", "augmented/a/train.2.wav":
                    "a/train.wav", "augmented/a/narrow.1.wav": "a/narrow.wav",
                    "augmented/a/narrow.2.wav": "a/narrow.wav"}
  assert all(r["group"] == r["path"] for r in listed if r["path"] not in copies)
  assert sf.info(str(tmp_path / "corpus/augmented/a/narrow.1.wav")).samplerate == 8000
  one, two = (sf.read(str(tmp_path / f"corpus/augmented/a/train.{k}.wav"))[0] for k in (1, 2))
  assert len(one) == len(two) == SR and not np.array_equal(one, two)


def test_a_test_recording_unlike_its_speakers_training_ones_is_named_with_why():
  """benchmarks/speaker_outliers.py's rule: another sample rate than 90 % of
  the speaker's training recordings, or a median f0 over 3 robust standard
  deviations from theirs; a recording like them is not named."""
  from benchmarks.speaker_outliers import unlike

  facts = {f"a/{k}": {"speaker": "a", "split": "train", "sample_rate": 44100,
                      "f0_hz": 120 * 2 ** (((k % 5) - 2) / 12)} for k in range(20)}
  facts["a/other_setup"] = {"speaker": "a", "split": "test", "sample_rate": 8000, "f0_hz": 121}
  facts["a/other_voice"] = {"speaker": "a", "split": "test", "sample_rate": 44100, "f0_hz": 240}
  facts["a/usual"] = {"speaker": "a", "split": "test", "sample_rate": 44100, "f0_hz": 125}
  facts["a/unvoiced"] = {"speaker": "a", "split": "test", "sample_rate": 44100, "f0_hz": None}
  facts["a/held"] = {"speaker": "a", "split": "validation", "sample_rate": 8000, "f0_hz": 300}
  found = unlike(facts)
  assert set(found) == {"a/other_setup", "a/other_voice"}
  assert found["a/other_setup"]["why"] == ["sample_rate"]
  assert found["a/other_setup"]["training_rates"] == {"44100": 20}
  assert found["a/other_voice"]["why"] == ["f0"] and found["a/other_voice"]["f0_robust_z"] > 3
  assert abs(found["a/other_voice"]["training_f0_hz_median"] - 120) < 0.5


def test_a_corpus_manifest_holds_its_own_lines_and_both_holds_every_line(tmp_path):
  """real_defaults.py's per-corpus manifests: the lines of real_speakers.csv
  under the corpus' folder, and for `both` every line of the two."""
  from benchmarks.real_defaults import manifest

  lines = ["path,speaker", "klettres/fr/a.ogg,klettres:fr", "ktuberling/fr/b.ogg,ktuberling:fr",
           "klettres/de/c.ogg,klettres:de", "alsa-utils/d.wav,alsa"]
  (tmp_path / "real_speakers.csv").write_text("\n".join(lines) + "\n")

  def rows(corpus):
    with open(manifest(str(tmp_path), corpus)) as f:
      return [(r["path"], r["speaker"]) for r in csv.DictReader(f)]

  assert rows("klettres") == [("klettres/fr/a.ogg", "klettres:fr"),
                              ("klettres/de/c.ogg", "klettres:de")]
  assert rows("ktuberling") == [("ktuberling/fr/b.ogg", "ktuberling:fr")]
  assert rows("both") == [tuple(l.split(",")) for l in lines[1:4]]


def test_back_ends_score_the_same_embeddings_and_an_ensemble_needs_the_same_clips():
  """benchmarks/back_ends.py: its plain LDA is trainer.heads' (the same
  posteriors); each variant and the average count the clips of clusters
  they separate; the seeds' ensemble adds their log-posteriors and refuses
  runs that hold other clips."""
  import pytest

  from benchmarks.back_ends import back_ends, ensemble, lda_scores
  from trainer.heads import fit_lda

  rng = np.random.default_rng(0)
  centres = rng.normal(0, 3, (3, 8))

  def clips(n):
    y = np.repeat(np.arange(3), n)
    return centres[y] + rng.normal(0, 1, (len(y), 8)), y

  (e, y), (v, vy), (t, ty) = clips(40), clips(10), clips(10)
  (plain,) = lda_scores(e, y, 3, t)
  w, b = fit_lda(e, y, 3)
  z = t @ w + b
  expected = z - z.max(axis=1, keepdims=True)
  expected -= np.log(np.exp(expected).sum(axis=1, keepdims=True))
  np.testing.assert_allclose(plain, expected, atol=1e-9)
  # A speaker without training clips (a fourth class name) never wins, shrunk or not.
  for shrinkage in (None, "ledoit_wolf", "oas"):
    (four,) = lda_scores(e, y, 4, t, shrinkage=shrinkage)
    assert four.shape == (30, 4) and (four.argmax(axis=1) != 3).all()
    assert (four[:, 3] < -1e3).all()

  wrong = np.zeros((30, 3))
  wrong[np.arange(30), (ty + 1) % 3] = 0.0
  wrong[np.arange(30), ty] = -5.0       # a softmax that is always wrong
  run = {"train_embedding": e, "train_label": y, "validation_embedding": v,
         "validation_label": vy, "test_embedding": t, "test_label": ty,
         "validation_softmax": np.log(np.full((30, 3), 1 / 3)),
         "test_softmax": wrong, "validation_default": wrong, "test_default": wrong}
  counted = back_ends(run)
  assert counted["test"]["clips"] == 30 and counted["test"]["softmax"] == 0
  assert all(counted["test"][k] >= 29 for k in ("lda", "lda_ledoit_wolf", "lda_oas",
                                                "lda_length_norm"))
  assert counted["test"]["average_lda"] == int(((plain + wrong).argmax(1) == ty).sum())

  right = dict(run, test_default=-wrong, validation_default=-wrong)
  assert ensemble([run, right, right])["test"] == {"clips": 30, "ensemble": 30,
                                                    "wrong_in_every_run": 0,
                                                    "wrong_in_some_run": 30}
  assert ensemble([run, run])["test"]["wrong_in_every_run"] == 30
  assert ensemble([run, run, right])["test"]["ensemble"] == 0
  with pytest.raises(ValueError, match="clips differ"):
    ensemble([run, dict(right, test_label=ty[::-1])])
