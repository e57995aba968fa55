"""Corpus layouts, auto-detection and split assignment (no Beam involved)."""

import json
import os
import pathlib

import pytest

from pipeline import splits
from pipeline.corpus import detect_layout, list_corpus, stream_corpus
from pipeline.corpus.manifest import ManifestError
from tests.helpers import tone, write_wav

X = tone(200.0, 1.0)


def touch(root, rel, audio=True):
  path = root / rel
  if audio:
    write_wav(path, X)
  else:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("text")
  return path


def by_file(files):
  return {f.relpath: f for f in files}


def test_folders_layout_accounts_for_every_file(tmp_path):
  root = tmp_path / "corpus"
  touch(root, "alice/a1.wav")
  touch(root, "alice/session 2/a2.flac")
  touch(root, "bob/b1.wav")
  touch(root, "loose.wav")
  touch(root, "bob/notes.txt", audio=False)
  outside = touch(tmp_path, "elsewhere/x.wav")
  os.symlink(outside, root / "bob" / "link.wav")
  layout, files = list_corpus(str(root))
  f = by_file(files)
  assert layout == "folders"
  assert len(files) == 6
  assert f["alice/session 2/a2.flac"].speaker == "alice"
  assert f["alice/a1.wav"].group == "alice/a1.wav"
  assert (f["loose.wav"].status, f["bob/notes.txt"].status, f["bob/link.wav"].status) == (
      "no_speaker", "not_audio", "outside_root")


def test_a_build_streams_the_listing_that_list_corpus_gives(tmp_path):
  """stream_corpus (what a build lists, one file at a time, remembering a
  number per file) refuses second names of a file: a hard link in another
  folder, symlinks to a real file and to a hard-linked one, two symlinks to
  a file the walk refuses (the first kept); list_corpus is the same listing
  sorted."""
  root = tmp_path / "corpus"
  real = touch(root, "ana/real.wav")
  touch(root, "ben/b1.wav")
  touch(root, "ben/notes.wav.txt", audio=False)
  (root / "cyd").mkdir()
  os.link(real, root / "cyd" / "hard.wav")
  (root / "dan").mkdir()
  os.symlink(real, root / "dan" / "to_real.wav")
  os.symlink(root / "cyd" / "hard.wav", root / "dan" / "to_hard.wav")
  (root / "eve").mkdir()
  os.symlink(root / "ben" / "notes.wav.txt", root / "eve" / "a.wav")
  os.symlink(root / "ben" / "notes.wav.txt", root / "eve" / "b.wav")
  listed = list_corpus(str(root))[1]
  assert [f.relpath for f in listed] == sorted(f.relpath for f in listed)
  layout, files = stream_corpus(str(root))
  streamed = {f.relpath: (f.status, f.detail, f.speaker, f.group) for f in files}
  assert layout == "folders" and streamed == {
      f.relpath: (f.status, f.detail, f.speaker, f.group) for f in listed}
  assert streamed["ana/real.wav"][0] == streamed["ben/b1.wav"][0] == "audio"
  assert streamed["cyd/hard.wav"][:2] == ("duplicate", "same file as ana/real.wav")
  assert streamed["dan/to_real.wav"][:2] == ("duplicate", "same file as ana/real.wav")
  assert streamed["dan/to_hard.wav"][:2] == ("duplicate", "same file as ana/real.wav")
  assert streamed["eve/a.wav"][0] == "audio"
  assert streamed["eve/b.wav"][:2] == ("duplicate", "same file as eve/a.wav")


def test_librispeech_groups_by_chapter(tmp_path):
  root = tmp_path / "dev-clean"
  for rel in ("84/121123/84-121123-0000.flac", "84/121123/84-121123-0001.flac",
              "84/121550/84-121550-0000.flac", "174/50561/174-50561-0000.flac"):
    touch(root, rel)
  touch(root, "84/121123/84-121123.trans.txt", audio=False)
  assert detect_layout(str(root)) == "librispeech"
  layout, files = list_corpus(str(root))
  f = by_file(files)
  assert f["84/121123/84-121123-0001.flac"].group == "84/121123"
  assert f["174/50561/174-50561-0000.flac"].speaker == "174"
  assert f["84/121123/84-121123.trans.txt"].status == "not_audio"


def test_vctk_puts_both_microphones_in_one_group(tmp_path):
  root = tmp_path / "VCTK-Corpus-0.92"
  touch(root, "wav48_silence_trimmed/p225/p225_001_mic1.flac")
  touch(root, "wav48_silence_trimmed/p225/p225_001_mic2.flac")
  touch(root, "wav48_silence_trimmed/p226/p226_001_mic1.flac")
  touch(root, "txt/p225/p225_001.txt", audio=False)
  touch(root, "speaker-info.txt", audio=False)
  assert detect_layout(str(root)) == "vctk"
  _, files = list_corpus(str(root))
  f = by_file(files)
  mic1, mic2 = (f[f"wav48_silence_trimmed/p225/p225_001_mic{k}.flac"] for k in (1, 2))
  assert mic1.speaker == mic2.speaker == "p225" and mic1.group == mic2.group
  assert f["txt/p225/p225_001.txt"].status != "audio"
  assert f["speaker-info.txt"].status != "audio"


def test_voxceleb_groups_by_video(tmp_path):
  root = tmp_path / "vox1_dev"
  touch(root, "wav/id10001/1zcIwhmdeo4/00001.wav")
  touch(root, "wav/id10001/1zcIwhmdeo4/00002.wav")
  touch(root, "wav/id10002/xTV-jFAUKcw/00001.wav")
  touch(root, "wav/id10002/xTV-jFAUKcw/00002.txt", audio=False)
  assert detect_layout(str(root)) == "voxceleb"
  _, files = list_corpus(str(root))
  f = by_file(files)
  assert f["wav/id10001/1zcIwhmdeo4/00002.wav"].speaker == "id10001"
  assert f["wav/id10001/1zcIwhmdeo4/00002.wav"].group == "wav/id10001/1zcIwhmdeo4"
  assert f["wav/id10002/xTV-jFAUKcw/00002.txt"].status == "not_audio"


def test_voxceleb2_aac_tree_is_a_voxceleb_corpus(tmp_path):
  """VoxCeleb2 dev: `aac/idNNNNN/<video>/<utt>.m4a`, each file audio (decoded
  through FFmpeg), the speaker its id, the video its group."""
  root = tmp_path / "vox2_dev"
  touch(root, "aac/id00012/21Uxsk56VDQ/00001.m4a", audio=False)
  touch(root, "aac/id00012/21Uxsk56VDQ/00002.m4a", audio=False)
  touch(root, "aac/id00015/0fijmz4vTVU/00001.m4a", audio=False)
  assert detect_layout(str(root)) == "voxceleb"
  _, files = list_corpus(str(root))
  f = by_file(files)
  assert all(x.status == "audio" for x in files) and len(files) == 3
  assert f["aac/id00012/21Uxsk56VDQ/00002.m4a"].speaker == "id00012"
  assert f["aac/id00012/21Uxsk56VDQ/00002.m4a"].group == "aac/id00012/21Uxsk56VDQ"


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_manifest_paths_are_relative_and_confined(tmp_path, kind):
  root = tmp_path / "m"
  touch(root, "clips/one.wav")
  touch(root, "clips/two.wav")
  touch(tmp_path, "secret.wav")
  rows = [("clips/one.wav", "ann"), ("./clips/two.wav", "ben"), ("../secret.wav", "ann"),
          ("clips/none.wav", "ben"), ("clips/one.wav", "ann")]
  manifest = root / f"list.{kind}"
  if kind == "csv":
    manifest.write_text("path,speaker\n" + "".join(f"{p},{s}\n" for p, s in rows))
  else:
    manifest.write_text("".join(json.dumps({"path": p, "speaker": s}) + "\n" for p, s in rows))
  layout, files = list_corpus(str(manifest))
  assert layout == "manifest"
  status = [(f.relpath, f.status) for f in files]
  assert sorted(status) == sorted([("clips/one.wav", "audio"), ("clips/two.wav", "audio"),
                                   ("../secret.wav", "outside_root"),
                                   ("clips/none.wav", "missing"),
                                   ("clips/one.wav", "duplicate")])


def test_manifest_without_speaker_column_is_refused(tmp_path):
  manifest = tmp_path / "list.csv"
  manifest.write_text("file,label\na.wav,x\n")
  with pytest.raises(ManifestError, match="speaker"):
    list_corpus(str(manifest))


@pytest.mark.parametrize("n,counts", [(1, [1, 0, 0]), (2, [1, 0, 1]), (3, [1, 1, 1]),
                                      (10, [8, 1, 1]), (548, [438, 55, 55]), (7, [5, 1, 1])])
def test_allocation_counts(n, counts):
  assert splits.allocate(n, (0.8, 0.1, 0.1)) == counts


def test_recording_splits_are_grouped_stratified_and_deterministic():
  pairs = {(f"s{s}", f"s{s}/rec{r}") for s in range(4) for r in range(20)}
  a = splits.assign(pairs)
  assert a == splits.assign(sorted(pairs, reverse=True))        # order-independent
  for s in range(4):
    mine = [a[(f"s{s}", f"s{s}/rec{r}")] for r in range(20)]
    assert (mine.count("train"), mine.count("validation"), mine.count("test")) == (16, 2, 2)
  assert a != splits.assign({(s, g + "x") for s, g in pairs})   # it depends on the names


def test_speaker_splits_are_speaker_disjoint():
  pairs = {(f"s{s}", f"s{s}/rec{r}") for s in range(10) for r in range(3)}
  a = splits.assign(pairs, by="speaker")
  split_of_speaker = {}
  for (s, _), split in a.items():
    assert split_of_speaker.setdefault(s, split) == split
  assert sorted(split_of_speaker.values()).count("train") == 8


def test_parse_fractions():
  assert splits.parse_fractions("80/10/10") == (0.8, 0.1, 0.1)
  assert splits.parse_fractions("70/15/15") == (0.7, 0.15, 0.15)
  for bad in ("80/20", "a/b/c", "0/50/50", "-1/1/1", "2/1/1", "90/20/10", "nan/10/10",
              "inf/10/10", "80/10/nan"):
    with pytest.raises(ValueError):
      splits.parse_fractions(bad)


def test_demo_synthesis_is_reproducible(tmp_path):
  """Two syntheses of a corpus, in two spawned processes over a second apart,
  give the same bytes (no clock-seeded voice variant, no call-history drift)."""
  import hashlib
  import time

  from pipeline import demo

  small = demo.DemoCorpus("repro", demo.VOICES20.voices[:4], 3, degrade=True)
  digests = []
  for run in ("a", "b"):
    folder = demo.materialise(small, str(tmp_path / run))
    digests.append({p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                    for p in sorted(pathlib.Path(folder).rglob("*.wav"))})
    time.sleep(1.1)
  assert len(digests[0]) == 12 and digests[0] == digests[1]


def test_recording_conditions_are_those_the_recording_was_made_in(tmp_path):
  """The conditions recorded for each degraded demo recording are the ones
  it was made in: its peak level is the one drawn, and every condition lies
  in the ranges the corpus documents."""
  import numpy as np
  import soundfile as sf

  from pipeline import demo

  small = demo.DemoCorpus("conditions", demo.VOICES20.voices[:3], 2, degrade=True)
  folder = pathlib.Path(demo.materialise(small, str(tmp_path)))
  paths = sorted(folder.rglob("*.wav"))
  assert len(paths) == 6
  for path in paths:
    c = demo.recording_conditions(str(folder), path.relative_to(folder).as_posix())
    x, _ = sf.read(path)
    assert 20 * np.log10(np.abs(x).max()) == pytest.approx(c["peak_dbfs"], abs=0.01)
    assert 0.9 <= c["speed"] <= 1.1 and 5 <= c["snr_db"] <= 30
    assert c["rt60_seconds"] == 0 or 0.1 <= c["rt60_seconds"] <= 0.7


def test_every_layout_lists_a_bucket_as_it_lists_a_folder(tmp_path):
  """Through Beam's filesystems alone (a scheme the OS cannot open), each
  layout names the same speakers, groups and outcomes as on local disk."""
  from tests.helpers import BucketLikeFileSystem

  trees = {
      "folders": ["ana/a.wav", "ana/sub/b.flac", "bob/c.wav", "bob/notes.txt"],
      "librispeech": ["174/50561/174-50561-0000.flac", "174/50561/174-50561.trans.txt",
                      "84/121123/84-121123-0001.flac"],
      "vctk": ["wav48_silence_trimmed/p225/p225_001_mic1.flac",
               "wav48_silence_trimmed/p225/p225_001_mic2.flac",
               "wav48_silence_trimmed/p226/p226_001_mic1.flac", "txt/p225/p225_001.txt",
               "speaker-info.txt"],
      "voxceleb": ["wav/id10001/1zcIwhmdeo4/00001.wav", "wav/id10001/1zcIwhmdeo4/00002.wav",
                   "wav/id10002/xTV-jFAUKcw/00001.wav"],
  }
  for layout, paths in trees.items():
    root = tmp_path / layout
    for rel in paths:
      touch(root, rel, audio=not rel.endswith(".txt"))
    shown = lambda files: sorted((f.relpath, f.speaker, f.group, f.status) for f in files)
    _, local = list_corpus(str(root), layout)
    _, bucket = list_corpus(BucketLikeFileSystem.PREFIX + str(root), layout)
    assert shown(bucket) == shown(local), layout
    # Detected from the objects' paths, as from the folders.
    assert detect_layout(BucketLikeFileSystem.PREFIX + str(root)) == layout == detect_layout(
        str(root))
    assert sum(f.status == "audio" for f in bucket) == sum(not p.endswith(".txt") for p in paths)


def test_splits_files_of_both_kinds_are_read_and_bad_lines_named(tmp_path):
  from pipeline.splits import official_split, read_splits_file

  (tmp_path / "iden_split.txt").write_text("1 id10001/1zcIwhmdeo4/00001.wav\n"
                                           "2 id10001/1zcIwhmdeo4/00002.wav\n"
                                           "3 id10002/xTV-jFAUKcw/00001.wav\n")
  table = read_splits_file(str(tmp_path / "iden_split.txt"))
  assert table == {"id10001/1zcIwhmdeo4/00001.wav": "train",
                   "id10001/1zcIwhmdeo4/00002.wav": "validation",
                   "id10002/xTV-jFAUKcw/00001.wav": "test"}
  # The corpus holds wav/idNNNNN/...: matched without its leading folders.
  assert official_split("wav/id10001/1zcIwhmdeo4/00002.wav", table) == (
      "validation", "id10001/1zcIwhmdeo4/00002.wav")
  assert official_split("wav/id10003/a/00001.wav", table) == (None, None)
  (tmp_path / "splits.csv").write_text("path,split,extra\nana/a.wav,train,x\nana/b.wav,dev,y\n"
                                       "bob/c.wav,test,z\n")
  assert read_splits_file(str(tmp_path / "splits.csv")) == {
      "ana/a.wav": "train", "ana/b.wav": "validation", "bob/c.wav": "test"}
  for bad, message in (("4 id1/a.wav\n", "line 1"), ("1 a.wav\n1 a.wav\n", "listed twice"),
                       ("", "no line")):
    (tmp_path / "bad.txt").write_text(bad)
    with pytest.raises(ValueError, match=message):
      read_splits_file(str(tmp_path / "bad.txt"))


def test_official_splits_decide_every_split_and_keep_copies():
  from pipeline import shards
  from pipeline.corpus import CorpusFile
  from pipeline.fingerprint import Fingerprint

  fp = lambda k: Fingerprint.of(1000 + k, tuple([0.1 * k] * 32))
  files = [(CorpusFile(f"/c/{s}/{k}.wav", f"{s}/{k}.wav", s, f"{s}/v{k // 2}", split=split),
            1, fp(base + (k if k != 5 else 1)))             # file 5 repeats file 1
           for base, s in ((0, "id1"), (10, "id2")) for k, split in enumerate(
               ["train", "train", "validation", "test", "test", "test"])]
  plan = shards.plan(files, 64)
  assert plan.official and plan.split_of == {f.relpath: f.split for f, _, _ in files}
  assert sum(plan.clips_per_split().values()) == 12                 # copies kept ...
  assert plan.duplicates == {"id1/5.wav": "id1/1.wav", "id2/5.wav": "id2/1.wav"}  # ... and named
