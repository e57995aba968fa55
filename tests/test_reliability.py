"""Messy input, interrupted builds: nothing lost, nothing half-written.

The fault corpus below is the table of docs/reliability.md: every kind of
broken or odd file, each with the outcome it must get.
"""

import json
import os
import re
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from pipeline.audio import load_audio
from pipeline.corpus.tree import unescape
from pipeline.espeak import synthesize
from pipeline.fingerprint import first_of_each, fingerprint
from pipeline.report import setup_checks
from tests.helpers import ENV, build, example_digests, fresh_python, make_corpus

from tfds_a2i import Builder

VERSION = str(Builder.VERSION)

NON_UTF8 = os.fsdecode(b"ana/caf\xe9 \xff.wav")
LOOKALIKE = "ana/caf\\xe9 \\xff.wav"       # a real name spelling the escape of NON_UTF8
ROOT_READS_ANYTHING = os.geteuid() == 0

# relative path -> (status, reason); the detail must contain the third item if given.
EXPECTED = {
    "ana/plain.wav": ("encoded", ""),
    "ana/stereo 44k.wav": ("encoded", ""),
    "ana/narrow 8k.wav": ("encoded", ""),
    "ana/pcm8.wav": ("encoded", ""),
    "ana/pcm24.wav": ("encoded", ""),
    "ana/naïve café.flac": ("encoded", ""),
    "ana/caf\\xe9 \\xff.wav": ("encoded", ""),             # the undecodable bytes, escaped
    "ana/caf\\\\xe9 \\\\xff.wav": ("encoded", ""),         # backslashes in the name, escaped
    "ana/take 2 (hard link).wav": ("skipped", "duplicate", "same file as ana/plain.wav"),
    "ben/link to ana.wav": ("skipped", "duplicate", "same file as ana/plain.wav"),
    "cyd/copy of ana.wav": ("skipped", "duplicate", "same audio as ana/caf"),
    "ana/dc only.wav": ("failed", "silent"),
    "ana/float at int scale.wav": ("encoded", "", "beyond full scale (peak 3.2"),
    "ana/float 1e20.wav": ("encoded", "", "beyond full scale (peak 1e+20"),
    "ben/3 hz.wav": ("failed", "implausible_rate", "3 Hz"),
    "dee\\u0020/spaced.wav": ("encoded", ""),
    "dee\\x0a/newline.wav": ("encoded", ""),
    "eve/": ("skipped", "linked_folder", "-> cyd/"),
    "fay/": ("skipped", "empty_folder"),
    "ana/cut short.wav": ("encoded", "", "truncated"),
    "ana/claims hours.wav": ("encoded", "", "declares 10800.0 s"),
    "ana/locked.wav": ("encoded", "") if ROOT_READS_ANYTHING else ("failed", "unreadable"),
    "ben/empty.wav": ("failed", "empty"),
    "ben/random bytes.wav": ("failed", "not_audio"),
    "ben/header only.wav": ("failed", "corrupt"),
    "ben/zeros.wav": ("failed", "silent"),
    "ben/blip 20ms.wav": ("failed", "too_short"),
    "ben/rate zero.wav": ("failed", "zero_rate"),
    "ben/nan.wav": ("failed", "non_finite"),
    "ben/too long.wav": ("failed", "too_long"),
    "ben/notes.txt": ("skipped", "not_audio"),
    "ben/escape.wav": ("skipped", "outside_root"),
    "ben/dangling.wav": ("skipped", "missing", "dangling symlink"),
    "ben/loop.wav": ("skipped", "missing", "symlink loop"),
    "ana/pipe.wav": ("skipped", "special_file", "FIFO"),      # open() would block forever
    "cyd/one.wav": ("encoded", ""),
    "cyd/two.wav": ("encoded", ""),
    "cyd/three.wav": ("encoded", ""),
    "loose.wav": ("skipped", "no_speaker"),
    "README.md": ("skipped", "not_audio"),
}


def speech(text, voice="en+f3"):
  return synthesize(text, voice, rate=170)


def at_rate(x, sr, rate):
  """Linear-interpolation resampling, enough to make files at other rates."""
  return np.interp(np.arange(0, len(x), sr / rate), np.arange(len(x)), x).astype(np.float32)


def make_fault_corpus(root, outside):
  def wav(rel, x, sr, **kw):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sr, **kw)
    return path

  x, sr = speech("Good morning, this is a clean reference sentence.")
  level = iter(np.linspace(0.9, 0.5, 16))      # every file its own audio, unless a copy
  plain = wav("ana/plain.wav", x, sr)
  x44 = at_rate(x, sr, 44100)
  wav("ana/stereo 44k.wav", np.stack([x44, 0.5 * x44], 1), 44100)
  wav("ana/narrow 8k.wav", at_rate(x, sr, 8000), 8000)
  wav("ana/pcm8.wav", next(level) * x, sr, subtype="PCM_U8")
  wav("ana/pcm24.wav", next(level) * x, sr, subtype="PCM_24")
  wav("ana/naïve café.flac", next(level) * x, sr)
  (root / NON_UTF8).write_bytes(wav("ana/tmp.wav", next(level) * x, sr).read_bytes())
  (root / LOOKALIKE).write_bytes(wav("ana/tmp.wav", next(level) * x, sr).read_bytes())
  (root / "ana/tmp.wav").unlink()
  os.link(plain, root / "ana/take 2 (hard link).wav")
  whole = plain.read_bytes()
  (root / "ana/cut short.wav").write_bytes(whole[:len(whole) * 2 // 3])
  lying = bytearray(wav("ana/claims hours.wav", next(level) * x, sr).read_bytes())
  i = lying.find(b"data")
  lying[i + 4:i + 8] = struct.pack("<I", sr * 2 * 3 * 3600)
  (root / "ana/claims hours.wav").write_bytes(bytes(lying))
  locked = wav("ana/locked.wav", next(level) * x, sr)
  os.chmod(locked, 0)
  wav("ana/dc only.wav", np.full(3 * sr, 0.3, np.float32), sr, subtype="FLOAT")
  # Another take than "float 1e20" (scaled to a peak of 1, the two would be
  # one recording, and the second a duplicate).
  take = x[sr // 4:]
  wav("ana/float at int scale.wav", take / np.abs(take).max() * 32767, sr, subtype="FLOAT")
  wav("ana/float 1e20.wav", x / np.abs(x).max() * 1e20, sr, subtype="FLOAT")
  for name, y in (("dee /spaced.wav", next(level) * x), ("dee\n/newline.wav", next(level) * x)):
    wav(name, y, sr)

  (root / "ben").mkdir()
  (root / "ben/empty.wav").write_bytes(b"")
  (root / "ben/random bytes.wav").write_bytes(np.random.default_rng(0).bytes(5000))
  (root / "ben/header only.wav").write_bytes(whole[:40])
  wav("ben/zeros.wav", np.zeros(3 * 16000, np.float32), 16000)
  wav("ben/blip 20ms.wav", 0.5 * np.sin(np.arange(320) * 2 * np.pi * 440 / 16000), 16000)
  rate0 = bytearray(whole)
  rate0[24:32] = bytes(8)  # sample rate and byte rate
  (root / "ben/rate zero.wav").write_bytes(bytes(rate0))
  nan = x.copy()
  nan[1000:1010] = np.nan
  nan[2000] = np.inf
  wav("ben/nan.wav", nan, sr, subtype="FLOAT")
  long, _ = speech("This recording goes on for much longer than the cap that this build sets "
                   "on the duration of a single file, on purpose.")
  wav("ben/too long.wav", np.concatenate([long, long]), sr)
  (root / "ben/notes.txt").write_text("session notes\n")
  target = outside / "elsewhere.wav"
  target.parent.mkdir(parents=True, exist_ok=True)
  target.write_bytes(whole)
  os.symlink(target, root / "ben/escape.wav")
  os.symlink(root / "ben/never-there.wav", root / "ben/dangling.wav")
  os.symlink(root / "ben/loop.wav", root / "ben/loop.wav")
  os.symlink(plain, root / "ben/link to ana.wav")
  three_hz = bytearray(whole)
  three_hz[24:28] = struct.pack("<I", 3)
  (root / "ben/3 hz.wav").write_bytes(bytes(three_hz))
  os.mkfifo(root / "ana/pipe.wav")

  for name, text in (("one", "A second voice reads this line."),
                     ("two", "And then it reads another line."),
                     ("three", "Finally a third line, to finish.")):
    y, rate = speech(text, "en+m3")
    wav(f"cyd/{name}.wav", y, rate)
  (root / "cyd/copy of ana.wav").write_bytes((root / NON_UTF8).read_bytes())
  os.symlink(root / "cyd", root / "eve")
  (root / "fay").mkdir()
  wav("loose.wav", x, sr)
  (root / "README.md").write_text("a messy corpus\n")
  return root


@pytest.fixture(scope="module")
def fault_build(tmp_path_factory):
  base = tmp_path_factory.mktemp("faults")
  root = make_fault_corpus(base / "messy", base / "outside")
  out = build(["--input", str(root), "--image_size", "64", "--max_seconds", "5",
               "--band_limit", "recording"], base / "tfds")
  with open(base / "tfds" / "a2i_speakers" / "messy_64" / VERSION / "build_report.json") as f:
    return root, json.load(f), out


@pytest.mark.slow
def test_every_fault_gets_its_documented_outcome(fault_build):
  _, report, out = fault_build
  # Each reason is explained from its own table: 'not_audio' means "by its
  # extension" for a skipped file and "libsndfile cannot decode it" for a failed one.
  assert report["reasons"]["skipped"]["not_audio"] == "not an audio file (by its extension)"
  assert report["reasons"]["failed"]["not_audio"].startswith("not an audio format libsndfile")
  assert "failed   1 x not_audio: not an audio format libsndfile" in out.stdout
  got = {r["file"]: r for r in report["files"]}
  assert set(got) == set(EXPECTED)                           # 100 % of the files, once
  for rel, (status, reason, *detail) in EXPECTED.items():
    assert (got[rel]["status"], got[rel]["reason"]) == (status, reason), rel
    if detail:
      assert detail[0] in got[rel]["detail"], rel


@pytest.mark.slow
def test_each_file_reports_its_own_rate_and_the_band_it_was_described_over(fault_build):
  """Built with --band_limit recording, the 8 kHz take is described to
  4 kHz, the others (22-44 kHz) to the working rate's 8 kHz; the summary
  counts files per band and the console says so, since the band changes
  what the spectral descriptors mean."""
  _, report, out = fault_build
  got = {r["file"]: r for r in report["files"]}
  assert (got["ana/narrow 8k.wav"]["sample_rate"], got["ana/narrow 8k.wav"]["band_hz"]) == (
      8000, 4000.0)
  assert (got["ana/stereo 44k.wav"]["sample_rate"], got["ana/stereo 44k.wav"]["band_hz"]) == (
      44100, 8000.0)
  encoded = [r for r in got.values() if r["status"] == "encoded"]
  s = report["summary"]
  assert s["files_per_band"] == {"8000": len(encoded) - 1, "4000": 1}
  assert s["working_band_hz"] == 8000.0
  never_decoded = [r for r in got.values()
                   if r["status"] == "skipped" and r["reason"] == "not_audio"]
  assert never_decoded and all(r["band_hz"] is r["sample_rate"] is None for r in never_decoded)
  assert (f"band     descriptors measured to 8 kHz in {len(encoded) - 1} files, "
          "4 kHz in 1 file") in out.stdout


@pytest.mark.slow
def test_recordings_at_a_rate_rare_for_their_speaker_are_named(fault_build):
  """ana's takes are at eSpeak NG's 22.05 kHz but for one at 44.1 kHz and
  one at 8 kHz: each is under 10 % of her encoded recordings, so each is
  named as perhaps another setup; cyd's three, all at one rate, are not."""
  _, report, out = fault_build
  ana = [r for r in report["files"] if r["speaker"] == "ana" and r["status"] == "encoded"]
  assert len(ana) > 10
  rare = report["checks"]["recordings_at_a_rate_rare_for_their_speaker"]
  assert rare["examples"] == [["ana/narrow 8k.wav", 8000], ["ana/stereo 44k.wav", 44100]]
  assert rare["count"] == 2
  assert rare["speakers"] == {"ana": {"22050": len(ana) - 2, "44100": 1, "8000": 1}}
  assert ("setups   2 recordings of 1 speaker at a sample rate under 10% of their "
          "speaker's recordings have") in out.stdout


def test_a_rate_is_rare_under_a_tenth_of_the_speakers_recordings():
  def records(speaker, rates):
    return [{"file": f"{speaker}/{k:02d}.wav", "speaker": speaker, "status": "encoded",
             "sample_rate": rate} for k, rate in enumerate(rates)]

  got = setup_checks(records("a", [16000] * 10 + [8000])        # 1 of 11: rare
                     + records("b", [16000] * 9 + [8000])       # 1 of 10: not under a tenth
                     + records("c", [16000] * 20 + [8000] * 2)  # 2 of 22: rare
                     + [dict(records("d", [8000])[0], status="failed")] + records("d", [16000]))
  rare = got["recordings_at_a_rate_rare_for_their_speaker"]
  assert rare["examples"] == [["a/10.wav", 8000], ["c/20.wav", 8000], ["c/21.wav", 8000]]
  assert rare["speakers"] == {"a": {"16000": 10, "8000": 1}, "c": {"16000": 20, "8000": 2}}
  assert setup_checks(records("a", [16000] * 30))[
      "recordings_at_a_rate_rare_for_their_speaker"]["count"] == 0


def test_a_held_out_recording_is_unlike_at_over_three_robust_deviations_of_pitch():
  """pipeline.report.pitch_profile and judge_pitch (what the build runs per
  recording) against the rule computed here: semitones, the median and
  1.4826 x the median absolute deviation of the speaker's voiced training
  recordings (at least half a semitone), 3 of them at least."""
  from pipeline.report import judge_pitch, pitch_check, pitch_profile

  def z(training, f0):
    st = 12 * np.log2(np.asarray(training) / 100.0)
    spread = max(1.4826 * np.median(np.abs(st - np.median(st))), 0.5)
    return abs(12 * np.log2(f0 / 100.0) - np.median(st)) / spread

  def judged(speaker, recordings):
    profile = pitch_profile([f0 for _, split, f0 in recordings if split == "train"])
    return [row for file, split, f0 in recordings
            if (row := judge_pitch(file, speaker, split, f0, profile))]

  steady = [("a/t%d.wav" % k, "train", f0) for k, f0 in enumerate([100, 102, 98, 101, 99, 103])]
  a = judged("a", steady + [("a/t9.wav", "train", 300.0),      # training: never named
                            ("a/v.wav", "validation", 104.0),  # 0.6 semitone off
                            ("a/x.wav", "test", 140.0),        # 5.8 semitones off
                            ("a/y.wav", "test", None),         # no voiced frame
                            ("a/t8.wav", "train", None)])
  training = [f0 for _, _, f0 in steady] + [300.0]
  assert [r["file"] for r in a] == ["a/x.wav"]
  assert a[0]["robust_z"] == round(z(training, 140.0), 1) > 3
  assert a[0]["training_f0_hz"] == round(100 * 2 ** (np.median(
      12 * np.log2(np.asarray(training) / 100)) / 12), 1)
  assert z(training, 104.0) < 3
  # Two training recordings are too few to judge; a wide voice (an actor's) has a wide spread.
  assert judged("b", [("b/1", "train", 100.0), ("b/2", "train", 101.0),
                      ("b/3", "test", 400.0)]) == []
  wide = [("c/%d" % k, "train", f0) for k, f0 in enumerate([100, 150, 200, 120, 180])]
  assert judged("c", wide + [("c/x", "test", 250.0)]) == []
  assert z([100, 150, 200, 120, 180], 250.0) < 3
  check = pitch_check(a)["held_out_recordings_at_a_pitch_unlike_their_speakers_training"]
  assert (check["count"], check["speakers"], check["recordings"]) == (1, ["a"], a)


@pytest.mark.slow
def test_a_build_names_a_held_out_recording_by_another_voice(tmp_path):
  """A voice filed under another speaker, in that speaker's test split (an
  official splits file): the build report's pitch check names it and only
  it, with the pitch the dataset's own descriptors give, and the console
  says so."""
  import tensorflow_datasets as tfds

  from pipeline.report import PITCH_CHECK
  from pipeline.spec import DESCRIPTOR_NAMES

  root, lines = tmp_path / "corpus", ["path,split"]
  for speaker, voice, pitch in (("hi", "en+f3", 80), ("lo", "en+m3", 15)):
    for i, split in enumerate(["train"] * 4 + ["validation", "test"]):
      x, sr = synthesize(f"Take {i} of the pitch check, read by {speaker}.", voice, rate=160,
                         pitch=pitch)
      (root / speaker).mkdir(parents=True, exist_ok=True)
      sf.write(str(root / speaker / f"{i}.wav"), x, sr)
      lines.append(f"{speaker}/{i}.wav,{split}")
  x, sr = synthesize("Another voice, filed under the low one.", "en+f3", rate=160, pitch=80)
  sf.write(str(root / "lo" / "odd.wav"), x, sr)
  lines.append("lo/odd.wav,test")
  (tmp_path / "splits.csv").write_text("\n".join(lines) + "\n")
  out = build(["--input", str(root), "--image_size", "64", "--splits_file",
               str(tmp_path / "splits.csv")], tmp_path / "tfds")
  builder = tfds.builder("a2i_speakers/corpus_64", data_dir=str(tmp_path / "tfds"))
  with open(os.path.join(builder.data_dir, "build_report.json")) as f:
    check = json.load(f)["checks"][PITCH_CHECK]
  assert [r["file"] for r in check["recordings"]] == ["lo/odd.wav"]
  assert (check["count"], check["speakers"]) == (1, ["lo"])
  # Each recording's pitch again, from the descriptors stored with its clips.
  column, clips = DESCRIPTOR_NAMES.index("f0_median"), {}
  for split in ("train", "validation", "test"):
    for ex in tfds.as_numpy(builder.as_dataset(split=split)):
      clips.setdefault(ex["recording"].decode(), []).append(float(ex["descriptors"][column]))
  f0 = {name: np.median([v for v in values if np.isfinite(v)]) for name, values in clips.items()}
  training = 12 * np.log2(np.array([f0[f"lo/{i}.wav"] for i in range(4)]) / 100)
  spread = max(1.4826 * np.median(np.abs(training - np.median(training))), 0.5)
  odd = check["recordings"][0]
  assert odd["f0_hz"] == pytest.approx(f0["lo/odd.wav"], abs=0.05)
  assert odd["robust_z"] == pytest.approx(
      abs(12 * np.log2(f0["lo/odd.wav"] / 100) - np.median(training)) / spread, abs=0.05)
  assert odd["f0_hz"] > 1.5 * odd["training_f0_hz"]               # the high voice
  assert ("pitch    1 held-out recording of 1 speaker at a median pitch over 3 robust "
          "deviations from their speaker's training recordings'") in out.stdout


def test_a_run_reads_the_recordings_the_build_report_names(tmp_path, capsys):
  """trainer.report.flagged_recordings: the recordings of the report's
  files that its rate check counts (the build's own rule) and those its
  pitch check lists, none where a check names none, and None for a check
  the report does not hold or when it is missing or cannot be read."""
  from pipeline.report import PITCH_CHECK, RARE_RATE_CHECK, REPORT_FILE, pitch_check
  from trainer.report import flagged_recordings

  files = [{"file": f"a/{k:02d}.wav", "speaker": "a", "status": "encoded",
            "sample_rate": 8000 if k == 3 else 16000} for k in range(12)]
  files.append({"file": "b/x.wav", "speaker": "b", "status": "failed", "sample_rate": 8000})
  unlike = [{"file": "a/07.wav", "speaker": "a", "split": "test", "f0_hz": 240.0,
             "training_f0_hz": 120.0, "robust_z": 12.0}]

  def report(**content):
    (tmp_path / REPORT_FILE).write_text(json.dumps(content))
    return flagged_recordings(str(tmp_path))

  none = {"rare_rate": None, "unlike_pitch": None}
  assert flagged_recordings(str(tmp_path)) == none
  assert report(checks={}, files=files) == none
  assert report(checks=setup_checks(files), files=files) == {"rare_rate": {"a/03.wav"},
                                                               "unlike_pitch": None}
  assert report(checks={**setup_checks(files), **pitch_check(unlike)}, files=files) == {
      "rare_rate": {"a/03.wav"}, "unlike_pitch": {"a/07.wav"}}
  uniform = [dict(f, sample_rate=16000) for f in files]
  assert report(checks={**setup_checks(uniform), **pitch_check([])}, files=uniform) == {
      "rare_rate": set(), "unlike_pitch": set()}
  # The count is the report's: with none counted, its file list is not searched.
  assert report(checks={RARE_RATE_CHECK: {"count": 0}}, files=files)["rare_rate"] == set()
  # A report cut short or of another shape leaves the columns empty, not the run dead.
  assert report(checks={RARE_RATE_CHECK: {"count": 1}}) == none
  assert report(checks={PITCH_CHECK: {"count": 1}}, files=files) == none
  (tmp_path / REPORT_FILE).write_text('{"checks": {"recordings_at')
  assert flagged_recordings(str(tmp_path)) == none
  assert "rare_rate and unlike_pitch left empty" in capsys.readouterr().out


def test_a_runs_summary_counts_its_errors_on_the_recordings_the_checks_name():
  from trainer.fit import check_lines

  def scores(named, rest, key="test_by_sample_rate", name="rare_for_their_speaker"):
    return {key: {
        name: dict(zip(("recordings", "clips", "right"), named),
                   accuracy=named[2] / named[1] if named[1] else None),
        "the_rest": dict(zip(("recordings", "clips", "right"), rest),
                         accuracy=rest[2] / rest[1] if rest[1] else None)}}

  assert check_lines(scores((1, 1, 0), (142, 142, 141))) == [
      "  at a sample rate rare for their speaker (build_report.json: checks): 1 test "
      "recording, 1 of the 2 clips wrong; accuracy on the other 142 clips 0.9930 "
      "(test_predictions.csv: rare_rate)"]
  assert "3 test recordings, 2 of the 2 clips wrong" in check_lines(
      scores((3, 4, 2), (10, 10, 10)))[0]
  pitch = scores((2, 3, 1), (50, 60, 60), "test_by_pitch", "unlike_their_speakers_training")
  assert check_lines(pitch) == [
      "  at a pitch unlike their speaker's training recordings (build_report.json: checks): "
      "2 test recordings, 2 of the 2 clips wrong; accuracy on the other 60 clips 1.0000 "
      "(test_predictions.csv: unlike_pitch)"]
  both = {**scores((1, 2, 1), (142, 142, 141)),
          **scores((16, 16, 15), (127, 128, 127), "test_by_pitch",
                   "unlike_their_speakers_training"),
          **scores((17, 18, 16), (126, 126, 126), "test_by_build_checks", "named_by_either")}
  assert check_lines(both)[2] == (
      "  named by either check (build_report.json: checks): 17 test recordings, 2 of the 2 "
      "clips wrong; accuracy on the other 126 clips 1.0000 (test_predictions.csv: rare_rate "
      "or unlike_pitch)")
  # Either check alone: no line for the two together.
  assert len(check_lines({**both, "test_by_sample_rate": scores((0, 0, 0), (9, 9, 9))[
      "test_by_sample_rate"]})) == 1
  assert check_lines(scores((0, 0, 0), (5, 5, 4))) == []
  assert check_lines({"test_by_sample_rate": None, "test_by_pitch": None}) == []


@pytest.mark.slow
def test_the_build_completes_and_reports_the_folder_without_usable_files(fault_build):
  _, report, out = fault_build
  s = report["summary"]
  assert s["files"] == len(EXPECTED)
  assert s["encoded"] + s["failed"] + s["skipped"] == s["files"]
  assert s["speakers_without_clips"] == ["ben"]
  assert "without any clip: ben" in out.stdout
  assert report["counters"]["files_repaired"] == 4   # cut short, claims hours, 2 float overs


@pytest.mark.slow
def test_labels_survive_a_reload_and_no_audio_appears_twice(fault_build):
  """In a fresh process, every example's class name is the speaker the report
  gives its recording, names with white space and line breaks included
  (TFDS's label file strips lines); every encoded file's audio is distinct."""
  root, report, _ = fault_build
  speaker_of = {r["file"]: r["speaker"] for r in report["files"] if r["status"] == "encoded"}
  assert {"dee\\u0020", "dee\\x0a"} <= set(speaker_of.values())
  assert report["dataset"]["escaped_speaker_names"] == {"dee\\u0020": "dee ",
                                                        "dee\\x0a": "dee\n"}
  code = ("import json, sys, tensorflow_datasets as tfds\n"
          f"b = tfds.builder('a2i_speakers/messy_64', data_dir={str(root.parent / 'tfds')!r})\n"
          "names = b.info.features['speaker'].names\n"
          "rows = [(ex['recording'].decode(), names[int(ex['speaker'])]) for split in b.info.splits"
          " for ex in tfds.as_numpy(b.as_dataset(split=split))]\n"
          "print(json.dumps(rows))")
  out = fresh_python(code)
  rows = json.loads(out.stdout)
  assert len(rows) == sum(r["clips"] for r in report["files"])
  assert all(speaker_of[recording] == label for recording, label in rows)
  prints = [(rel, fingerprint(load_audio(str(root / unescape(rel)), max_seconds=5)))
            for rel in speaker_of]
  assert first_of_each(prints) == {}


def test_names_are_escaped_reversibly_and_uniquely():
  from hypothesis import given, settings, strategies as st

  from pipeline.corpus.tree import escape, unescape

  names = st.one_of(st.text(), st.binary().map(os.fsdecode))

  @settings(max_examples=2000, deadline=None)
  @given(names, names)
  def check(a, b):
    assert unescape(escape(a)) == a
    assert (escape(a) == escape(b)) == (a == b)
    label = escape(a)
    assert "\n" not in label and label.split("/") == [p.strip() for p in label.split("/")]
    label.encode("utf-8")           # TFDS writes class names as UTF-8

  check()


def test_decoding_memory_is_bounded_whatever_the_header_claims(tmp_path):
  """A 4 KB WAV whose header claims an hour of 64 channels at 192 kHz: decoded
  a bounded block at a time (the first decoder allocated 1.5 GB for it)."""
  import tracemalloc

  from pipeline.audio import BLOCK_BYTES, load_audio

  channels, rate = 64, 192000
  data = np.random.default_rng(0).integers(-3000, 3000, 4000, dtype=np.int16).tobytes()
  header = (b"RIFF" + struct.pack("<I", 0xFFFFFFF0) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2,
                                    channels * 2, 16)
            + b"data" + struct.pack("<I", 3600 * rate * channels * 2 % 2**32 or 2**32 - 2))
  (tmp_path / "wide.wav").write_bytes(header + data)
  notes = []
  tracemalloc.start()
  y = load_audio(str(tmp_path / "wide.wav"), notes=notes)
  peak = tracemalloc.get_traced_memory()[1]
  tracemalloc.stop()
  assert len(y) == round(len(data) / (2 * channels) * 16000 / rate)
  assert "truncated" in notes[0]
  assert peak < 2 * BLOCK_BYTES, f"{peak / 2**20:.0f} MiB"


def start_build_until_its_job_runs(args, config_dir, **popen):
  """Starts `args` and returns once its Beam job has started (the listing is written)."""
  proc = subprocess.Popen(args, env=ENV, **popen)
  deadline = time.time() + 120
  while time.time() < deadline and proc.poll() is None:
    if list(config_dir.glob("incomplete.*/_build/state.json")):
      break
    time.sleep(0.05)
  assert proc.poll() is None, "the build ended before it could be interrupted"
  return proc


@pytest.mark.slow
def test_kill_during_build_leaves_nothing_loadable_and_rerun_matches(tmp_path):
  corpus = make_corpus(tmp_path / "voices")
  args = [sys.executable, "-m", "pipeline.build", "--input", str(corpus), "--image_size", "64",
          "--data_dir", str(tmp_path / "killed"), "--runner=DirectRunner"]
  config_dir = tmp_path / "killed" / "a2i_speakers" / "voices_64"
  proc = start_build_until_its_job_runs(args, config_dir, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
  time.sleep(0.5)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert not (config_dir / VERSION).exists()
  assert list(config_dir.glob("incomplete.*"))               # the half-written folder ...
  code = ("import tensorflow_datasets as tfds; "
          f"tfds.load('a2i_speakers/voices_64', data_dir={str(tmp_path / 'killed')!r})")
  loaded = fresh_python(code, check=False)
  assert loaded.returncode != 0                              # ... is not a dataset
  rerun = subprocess.run(args, capture_output=True, text=True, env=ENV)
  assert rerun.returncode == 0, rerun.stderr[-2000:]
  assert re.search(r"resumed: \d+ of \d+ shards already written", rerun.stdout)
  assert not list(config_dir.glob("incomplete.*"))
  build(["--input", str(corpus), "--image_size", "64"], tmp_path / "clean")
  assert example_digests(tmp_path / "killed") == example_digests(tmp_path / "clean")
  # Byte for byte, the report included: a resumed build is the uninterrupted one.
  for path in (tmp_path / "clean" / "a2i_speakers" / "voices_64" / VERSION).iterdir():
    assert path.read_bytes() == (config_dir / VERSION / path.name).read_bytes(), path.name


@pytest.mark.slow
def test_a_build_killed_after_some_shards_resumes_them_and_starts_over_when_changed(tmp_path):
  """Killed once shards are complete, the rerun writes only the others (the
  counts say so) and ends byte-identical; a rerun with other settings, or
  --overwrite, starts over and says why."""
  corpus = make_corpus(tmp_path / "voices", utterances=12)
  args = [sys.executable, "-m", "pipeline.build", "--input", str(corpus), "--image_size", "64",
          "--data_dir", str(tmp_path / "killed"), "--runner=DirectRunner",
          "--direct_num_workers=1"]
  config_dir = tmp_path / "killed" / "a2i_speakers" / "voices_64"
  proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
  deadline = time.time() + 240
  while time.time() < deadline and proc.poll() is None:
    done = [p for p in config_dir.glob("incomplete.*/*-of-*") if not p.name.endswith(".partial")]
    if done:
      break
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  taken = len([p for p in config_dir.glob("incomplete.*/_build/outcomes/*.json")])
  assert taken >= 1, "no shard was complete when the build was killed"
  chunks = len(list(config_dir.glob("incomplete.*/_build/listing/listing-*.jsonl")))
  assert len(list(config_dir.glob("incomplete.*/_build/analysis/listing-*.jsonl"))) == chunks
  rerun = subprocess.run(args, capture_output=True, text=True, env=ENV)
  assert rerun.returncode == 0, rerun.stderr[-2000:]
  total = len(list((config_dir / VERSION).glob("*-of-*")))
  assert f"resumed: {taken} of {total} shards already written" in rerun.stdout
  # The analysis is taken over too (no file decoded twice for it); its
  # counters are counted again, so the report below is still the same bytes.
  assert f"and the analysis of {chunks} listing chunks taken over" in rerun.stdout
  report = json.loads((config_dir / VERSION / "build_report.json").read_text())
  assert report["counters"]["shards_written"] == total
  build(["--input", str(corpus), "--image_size", "64", "--direct_num_workers=1"],
        tmp_path / "clean")
  for path in (tmp_path / "clean" / "a2i_speakers" / "voices_64" / VERSION).iterdir():
    assert path.read_bytes() == (config_dir / VERSION / path.name).read_bytes(), path.name
  # Another setting: the leftover of a killed build is not taken over.
  leftover = config_dir / "incomplete.LEFT01_2.0.0"
  (leftover / "_build").mkdir(parents=True)
  (leftover / "_build" / "state.json").write_text(json.dumps({"settings": "other"}))
  again = subprocess.run(args + ["--overwrite"], capture_output=True, text=True, env=ENV)
  assert again.returncode == 0 and "resumed" not in again.stdout
  assert not leftover.exists()


@pytest.mark.slow
def test_manifest_escape_is_refused_in_a_build(tmp_path):
  root = tmp_path / "m"
  root.mkdir()
  x, sr = speech("A line for the manifest test.")
  for i in range(3):
    sf.write(str(root / f"a{i}.wav"), (1 - 0.1 * i) * x, sr)   # three distinct recordings
  sf.write(str(tmp_path / "secret.wav"), x, sr)
  (root / "list.csv").write_text("path,speaker\n" + "".join(f"a{i}.wav,zoe\n" for i in range(3))
                                 + "../secret.wav,zoe\n/etc/passwd,zoe\n")
  build(["--input", str(root / "list.csv"), "--image_size", "64"], tmp_path / "tfds")
  with open(tmp_path / f"tfds/a2i_speakers/list_64/{VERSION}/build_report.json") as f:
    got = {r["file"]: (r["status"], r["reason"]) for r in json.load(f)["files"]}
  assert got["../secret.wav"] == ("skipped", "outside_root")
  assert [v for k, v in got.items() if "passwd" in k] == [("skipped", "outside_root")]
  assert sum(v == ("encoded", "") for v in got.values()) == 3


def test_no_unsafe_deserialisation_in_our_code():
  """User data is read as audio, JSON or CSV; models with safe_mode=True."""
  import pathlib

  src = pathlib.Path(__file__).resolve().parent.parent
  for path in list((src / "pipeline").rglob("*.py")) + list((src / "trainer").rglob("*.py")) + \
      list((src / "tfds_a2i").rglob("*.py")):
    text = path.read_text()
    for bad in ("import pickle", "pickle.load", "yaml.load(", "eval(", "allow_pickle=True",
                "safe_mode=False"):
      assert bad not in text, f"{path.name}: {bad}"
  assert "safe_mode=True" in (src / "trainer" / "predict.py").read_text()


def test_excel_csv_manifest_with_bom_and_crlf_is_read(tmp_path):
  from pipeline.corpus import list_corpus

  x, sr = speech("A line for the spreadsheet manifest.")
  for i in range(2):
    sf.write(str(tmp_path / f"a{i}.wav"), x, sr)
  (tmp_path / "list.csv").write_bytes(
      "\ufeffpath,speaker\r\na0.wav,zoe\r\na1.wav,zoe\r\n".encode("utf-8"))
  layout, files = list_corpus(str(tmp_path / "list.csv"))
  assert layout == "manifest"
  assert [(f.relpath, f.speaker, f.status) for f in files] == [("a0.wav", "zoe", "audio"),
                                                                ("a1.wav", "zoe", "audio")]


@pytest.mark.parametrize("args,message", [
    (["--clip_seconds", "nan"], "--clip_seconds must be a positive number of seconds, got nan"),
    (["--max_seconds", "nan"], "--max_seconds must be a positive number"),
    (["--min_speech_seconds", "inf"], "--min_speech_seconds must be a positive number"),
    (["--splits", "nan/10/10"], "splits must look like 80/10/10"),
    (["--splits", "90/20/10"], "summing to 100"),
])
def test_bad_numbers_fail_with_one_line(tmp_path, args, message):
  out = build(args, tmp_path, check=False)
  assert out.returncode == 2
  assert len(out.stderr.strip().splitlines()) == 1 and message in out.stderr


def test_jsonl_manifest_line_that_is_not_an_object_fails_with_one_line(tmp_path):
  (tmp_path / "list.jsonl").write_text('{"path": "a.wav", "speaker": "zoe"}\n["a.wav", "zoe"]\n')
  out = build(["--input", str(tmp_path / "list.jsonl")], tmp_path / "tfds", check=False)
  assert out.returncode == 2
  assert len(out.stderr.strip().splitlines()) == 1
  assert "line 2 is a JSON list, not an object" in out.stderr


def _as_a_terminal_starts_it():
  """Ctrl-C at its default, as a shell gives a job it runs in the foreground.
  A child inherits an ignored SIGINT (a job a script starts in the background
  has it ignored) and Python then keeps ignoring it; the build too, as it
  should: a user who started it that way asked for exactly that."""
  signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_stops_with_one_line_and_leaves_nothing(tmp_path):
  corpus = make_corpus(tmp_path / "voices", utterances=3)
  data_dir = tmp_path / "tfds"
  config_dir = data_dir / "a2i_speakers" / "voices_64"
  proc = start_build_until_its_job_runs(
      [sys.executable, "-m", "pipeline.build", "--input", str(corpus), "--image_size", "64",
       "--data_dir", str(data_dir)], config_dir, preexec_fn=_as_a_terminal_starts_it,
      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  proc.send_signal(signal.SIGINT)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 130, err[-2000:]
  assert "Traceback" not in err
  assert err.strip().splitlines()[-1].startswith("interrupted: nothing was published")
  assert not list(config_dir.glob("*"))   # no version, no temporary folder


@pytest.mark.slow
def test_a_rebuild_killed_midway_keeps_the_previous_version(tmp_path):
  """--overwrite builds beside the version it replaces: killed at any point,
  the previous complete version still loads; the rerun replaces it."""
  corpus = make_corpus(tmp_path / "voices", utterances=3)
  data_dir = tmp_path / "tfds"
  build(["--input", str(corpus), "--image_size", "64"], data_dir)
  before = example_digests(data_dir)
  config_dir = data_dir / "a2i_speakers" / "voices_64"
  args = [sys.executable, "-m", "pipeline.build", "--input", str(corpus), "--image_size", "64",
          "--data_dir", str(data_dir), "--runner=DirectRunner", "--overwrite"]
  proc = start_build_until_its_job_runs(args, config_dir / f".rebuild-{VERSION}" /
                                        "a2i_speakers" / "voices_64",
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert example_digests(data_dir) == before                  # still there, still whole
  rerun = build(["--input", str(corpus), "--image_size", "64", "--overwrite"], data_dir)
  assert "removed 1 unfinished build folder" in rerun.stdout
  assert sorted(p.name for p in config_dir.iterdir()) == [VERSION]
  assert example_digests(data_dir) == before                  # same corpus: same dataset


def _workers_of(pid):
  """pids of the Beam SDK worker processes started by process `pid`."""
  found, todo = set(), [pid]
  while todo:
    parent = todo.pop()
    for name in os.listdir("/proc"):
      try:
        with open(f"/proc/{name}/stat", "rb") as f:
          ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        if ppid == parent and name.isdigit():
          todo.append(int(name))
          with open(f"/proc/{name}/cmdline", "rb") as f:
            if b"sdk_worker_main" in f.read():
              found.add(int(name))
      except (OSError, ValueError, IndexError):
        pass
  return found


@pytest.mark.slow
def test_killing_a_multi_process_build_leaves_no_worker_running(tmp_path):
  corpus = make_corpus(tmp_path / "voices", utterances=3)
  config_dir = tmp_path / "tfds" / "a2i_speakers" / "voices_64"
  proc = start_build_until_its_job_runs(
      [sys.executable, "-m", "pipeline.build", "--input", str(corpus), "--image_size", "64",
       "--data_dir", str(tmp_path / "tfds"), "--direct_num_workers=2",
       "--direct_running_mode=multi_processing"], config_dir,
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 60
  while time.time() < deadline and len(_workers_of(proc.pid)) < 2:
    time.sleep(0.05)
  workers = _workers_of(proc.pid)
  assert len(workers) >= 2, "the build started no worker processes"
  proc.send_signal(signal.SIGKILL)        # at once: workers started a moment ago included
  proc.wait()
  deadline = time.time() + 10
  while time.time() < deadline and any(os.path.exists(f"/proc/{pid}") for pid in workers):
    time.sleep(0.1)
  assert not [pid for pid in workers if os.path.exists(f"/proc/{pid}")]
