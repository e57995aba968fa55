"""Shard plans: every clip placed once, shards bounded, the same plan for any input order."""

import random

import pytest

from pipeline import shards
from pipeline.corpus import CorpusFile
from pipeline.fingerprint import SEGMENTS, Fingerprint


def audio(rng):
  """The fingerprint of a recording of its own (16 kHz, about 4 s)."""
  return Fingerprint.of(rng.randint(60000, 70000),
                     tuple(rng.uniform(0.01, 0.2) for _ in range(SEGMENTS))
                     + tuple(rng.gauss(0, 0.1) for _ in range(SEGMENTS)))


def corpus(speakers=5, sessions=12, files_per_session=3, seed=0):
  """(file, clips, audio fingerprint) for a LibriSpeech-like tree: speaker/session/utterance."""
  rng = random.Random(seed)
  out = []
  for s in range(speakers):
    for g in range(sessions):
      for u in range(files_per_session):
        rel = f"spk{s}/{g}/spk{s}-{g}-{u:04d}.flac"
        out.append((CorpusFile("/c/" + rel, rel, f"spk{s}", f"spk{s}/{g}"), rng.randint(1, 9),
                    audio(rng)))
  return out


def placed(plan):
  return [(f.relpath, n, t.split) for t in plan.tasks for f, n in t.files]


def test_every_recording_lands_once_in_its_split_with_all_its_clips():
  analysed = corpus()
  plan = shards.plan(analysed, image_size=512)
  rows = placed(plan)
  assert sorted((r, n) for r, n, _ in rows) == sorted((f.relpath, n) for f, n, _ in analysed)
  assert all(plan.split_of[r] == split for r, _, split in rows)
  assert sum(plan.clips_per_split().values()) == sum(n for _, n, _ in analysed)
  assert plan.duplicates == {}


def test_a_session_never_spans_two_splits():
  plan = shards.plan(corpus(), image_size=128)
  split_of_session = {}
  for rel, _, split in placed(plan):
    session = rel.rsplit("/", 1)[0]
    assert split_of_session.setdefault(session, split) == split
  assert set(split_of_session.values()) == {"train", "validation", "test"}


def test_shards_are_bounded_and_numbered_per_split():
  analysed = corpus(speakers=20, sessions=20)
  plan = shards.plan(analysed, image_size=512)
  size = shards.clips_per_shard(512, sum(n for _, n, _ in analysed))
  for split in plan.clips_per_split():
    tasks = [t for t in plan.tasks if t.split == split]
    assert [t.index for t in tasks] == list(range(len(tasks)))
    assert {t.num_shards for t in tasks} == {len(tasks)}
    assert all(t.num_clips <= size for t in tasks)
    assert all(t.num_clips > size // 2 for t in tasks[:-1])  # packed, not one file a shard


def test_a_recording_longer_than_a_shard_gets_a_shard_of_its_own():
  analysed = corpus(speakers=3, sessions=3, files_per_session=1)
  long_take = CorpusFile("/c/spk0/long.wav", "spk0/long.wav", "spk0", "spk0/long")
  plan = shards.plan(analysed + [(long_take, 900, audio(random.Random(9)))], image_size=512)
  (task,) = [t for t in plan.tasks if any(f == long_take for f, _ in t.files)]
  assert task.files == ((long_take, 900),)


def test_the_plan_does_not_depend_on_the_order_results_arrive_in():
  analysed = corpus()
  shuffled = analysed[:]
  random.Random(1).shuffle(shuffled)
  assert shards.plan(analysed, 256) == shards.plan(shuffled, 256)


def test_files_without_clips_take_no_place():
  analysed = corpus(speakers=2, sessions=4)
  rng = random.Random(5)
  broken = [(CorpusFile(f"/c/spk0/x{i}.wav", f"spk0/x{i}.wav", "spk0", f"spk0/x{i}"), 0,
             audio(rng)) for i in range(10)]
  with_broken = shards.plan(analysed + broken, 64)
  assert with_broken == shards.plan(analysed, 64)


def test_the_same_audio_is_encoded_once_whatever_its_name_or_speaker():
  """Copies of a recording (here: in its own session, in another session and
  under another speaker) are left to the first by path, and named."""
  analysed = corpus(speakers=3, sessions=6)
  f, n, recording = analysed[7]
  copies = [(CorpusFile("/c/" + rel, rel, spk, group), n, recording) for rel, spk, group in (
      ("spk0/copy.flac", "spk0", "spk0/copy"), ("spk2/stolen.flac", "spk2", "spk2/9"))]
  plan = shards.plan(analysed + copies, 128)
  first = min([f.relpath] + [c.relpath for c, _, _ in copies])
  assert plan.duplicates == {rel: first for rel in {f.relpath, "spk0/copy.flac",
                                                    "spk2/stolen.flac"} - {first}}
  assert [r for r, _, _ in placed(plan)].count(first) == 1
  assert not set(plan.duplicates) & {r for r, _, _ in placed(plan)}


@pytest.mark.parametrize("image_size,clips,expected", [
    (512, 100_000, 59),     # bounded by bytes: ~16 MiB of 512 px PNG examples
    (64, 100_000, 391),     # bounded by count: 256 shards for the corpus
    (64, 300, 16),          # never below 16 clips a shard
    (64, 10_000_000, 3080),  # ~16 MiB of 64 px examples
])
def test_clips_per_shard(image_size, clips, expected):
  assert shards.clips_per_shard(image_size, clips) == expected
