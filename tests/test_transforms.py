"""The Beam transforms in process (TestPipeline + assert_that), on real decoded speech.

BuildShards is run on a tiny corpus listed in chunks; the shards it writes
are read back with TensorFlow's TFRecord reader and TFDS's feature decoder,
and every image is recomputed from the audio; the report's records come from
the files its plan wrote.
"""

import json
import os

import apache_beam as beam
import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf
import tensorflow_datasets as tfds
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from threadpoolctl import threadpool_limits

from pipeline import shards
from pipeline.audio import load_audio
from pipeline.clips import segment
from pipeline.corpus import CorpusFile, list_corpus
from pipeline.encode import encode_clip
from pipeline.espeak import synthesize
from pipeline.spec import DEFAULT_SPEC
from pipeline.fingerprint import fingerprint
from pipeline.transforms import BuildShards, WriteShard, write_listing
from tests.helpers import BucketLikeFileSystem, write_wav
from tfds_a2i import A2iSpeakersConfig, Builder
from tfds_a2i.a2i_speakers.a2i_speakers_dataset_builder import ExampleSerializer

SIZE = 64
VOICES = {"ana": ("en+f3", 70), "ben": ("en+m3", 30), "cyd": ("en-us+m1", 45)}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  root = tmp_path_factory.mktemp("voices")
  files = []
  for speaker, (voice, pitch) in VOICES.items():
    for i in range(4):
      x, sr = synthesize(f"Utterance {i} spoken by {speaker} for the transform test.", voice,
                         rate=150 + 9 * i, pitch=pitch)
      if i == 3:
        x = np.concatenate([x] * 3)  # a recording of two clips
      rel = f"{speaker}/{speaker}_{i}.wav"
      write_wav(root / rel, x, sr)
      files.append(CorpusFile(str(root / rel), rel, speaker, rel))
  (root / "ben" / "junk.wav").write_bytes(b"RIFF....WAVEjunk")
  files.append(CorpusFile(str(root / "ben/junk.wav"), "ben/junk.wav", "ben", "ben/junk.wav"))
  return root, files


@pytest.fixture(scope="module")
def features():
  config = A2iSpeakersConfig(name="t", speakers=tuple(VOICES), image_size=SIZE)
  return Builder(config=config, data_dir="/nonexistent").info.features


def shard_namer(folder):
  return lambda split, index, n: os.path.join(folder, f"{split}-{index:05d}-of-{n:05d}")


def build(files, work, shard_folder, features, per_chunk=3):
  """BuildShards over `files` listed in chunks of `per_chunk`, its work files
  in `work`: (the outcome of each shard, the report's records in file
  order)."""
  chunks, _ = write_listing(files, os.path.join(str(work), "listing"), per_chunk)
  assert len(chunks) == -(-len(files) // per_chunk)
  with TestPipeline() as p:
    written = (p
               | beam.Create(chunks)
               | BuildShards(DEFAULT_SPEC, SIZE, 60.0, (0.8, 0.1, 0.1), "recording",
                             shard_namer(str(shard_folder)), ExampleSerializer(features),
                             work=str(work))
               | beam.Map(json.dumps))
    collected = os.path.join(str(work), "outcomes")
    _ = written | beam.io.WriteToText(collected)
  outcomes = [json.loads(line) for part in sorted(os.listdir(str(work)))
              if part.startswith("outcomes")
              for line in open(os.path.join(str(work), part)) if line.strip()]
  records = [json.loads(line) for part in sorted(os.listdir(str(work)))
             if part.startswith("records-")
             for line in open(os.path.join(str(work), part)) if line.strip()]
  return outcomes, records


def read_shard(path, features):
  return [tfds.as_numpy(features.deserialize_example(record))
          for record in tf.data.TFRecordDataset(path)]


def test_build_shards_reports_every_file_and_writes_each_clip_once(corpus, features, tmp_path):
  root, files = corpus
  clips, digests = {}, {}
  for f in files[:-1]:
    x = load_audio(f.path)
    clips[f.relpath], digests[f.relpath] = len(segment(x)), fingerprint(x)
  plan = shards.plan([(f, clips[f.relpath], digests[f.relpath]) for f in files[:-1]], SIZE)
  assert sum(clips.values()) == 15 and len(plan.tasks) == 3

  outcomes, records = build(files, tmp_path / "work", tmp_path, features)
  assert [(r["file"], r["status"], r["reason"], r["clips"], r["split"]) for r in records] == \
      sorted([(rel, "encoded", "", n, plan.split_of[rel]) for rel, n in clips.items()]
             + [("ben/junk.wav", "failed", "corrupt", 0, None)])
  assert sorted((s["split"], s["index"], s["examples"], len(s["files"])) for s in outcomes) == \
      sorted((t.split, t.index, t.num_clips, len(t.files)) for t in plan.tasks)

  seen = set()
  for task in plan.tasks:
    rows = read_shard(str(tmp_path / f"{task.split}-{task.index:05d}-of-{task.num_shards:05d}"),
                      features)
    assert len(rows) == task.num_clips
    for row in rows:
      rel = row["recording"].decode()
      assert plan.split_of[rel] == task.split
      seen.add((rel, int(row["clip_index"])))
      clip = segment(load_audio(str(root / rel)))[row["clip_index"]]
      with threadpool_limits(1):
        expected = encode_clip(clip.samples, SIZE, require_speech=False)
      np.testing.assert_array_equal(row["image"], expected.image)
      np.testing.assert_array_equal(row["descriptors"], expected.descriptors)
      assert features["speaker"].int2str(row["speaker"]) == rel.split("/")[0]
  assert seen == {(rel, i) for rel, n in clips.items() for i in range(n)}


def test_one_recording_stored_in_two_sample_formats_is_encoded_once(corpus, features,
                                                                    tmp_path):
  """The same take as float WAV and as 24-bit PCM decodes to samples that
  differ in their last bits: one is encoded, the other reported as its
  duplicate, under another speaker too."""
  root, files = corpus
  x, rate = sf.read(str(root / "ana/ana_0.wav"), dtype="float32")
  copies = []
  for rel, subtype in (("ana/take_float.wav", "FLOAT"), ("cyd/take_24bit.wav", "PCM_24")):
    sf.write(str(tmp_path / rel.replace("/", "_")), x * 0.9, rate, subtype=subtype)
    copies.append(CorpusFile(str(tmp_path / rel.replace("/", "_")), rel, rel.split("/")[0], rel))
  assert not np.array_equal(*(load_audio(c.path) for c in copies))
  _, records = build(files[:3] + copies, tmp_path / "work", tmp_path, features)
  copies_seen = [(r["file"], r["status"], r["reason"], r["detail"]) for r in records
                 if r["file"] in ("ana/take_float.wav", "cyd/take_24bit.wav")]
  assert copies_seen == [("ana/take_float.wav", "encoded", "", ""),
                         ("cyd/take_24bit.wav", "skipped", "duplicate",
                          "same audio as ana/take_float.wav")]


def test_a_file_that_changed_after_the_analysis_is_reported_as_written(corpus, features,
                                                                       tmp_path):
  """The shard writer says what it found, not what the plan expected."""
  root, files = corpus
  one, two = files[0], files[3]              # 1 clip and 2 clips
  gone = CorpusFile(str(root / "ana/gone.wav"), "ana/gone.wav", "ana", "ana/gone.wav")
  task = shards.ShardTask("train", 0, 1, ((one, 1), (two, 5), (gone, 1)))
  with TestPipeline() as p:
    out = (p | beam.Create([task])
           | beam.ParDo(WriteShard(DEFAULT_SPEC, SIZE, 60.0, shard_namer(str(tmp_path)),
                                   ExampleSerializer(features))))
    assert_that(out | beam.Map(lambda s: (s["examples"], sorted(
        (f["file"], f["clips"], f["expected"], f.get("reason", "")) for f in s["files"]))),
        equal_to([(3, [(one.relpath, 1, 1, ""), (two.relpath, 2, 5, ""),
                       ("ana/gone.wav", 0, 1, "unreadable")])]))
  assert len(read_shard(str(tmp_path / "train-00000-of-00001"), features)) == 3
  assert not list(tmp_path.glob("*.partial"))


def test_corpus_and_shards_on_a_filesystem_only_beam_can_open(corpus, features, tmp_path):
  """Listing, decoding and shard writing go through Beam's filesystems, so a
  bucket corpus and a bucket data dir need no shared disk: same examples."""
  root, _ = corpus
  url = BucketLikeFileSystem.PREFIX + str(root)
  _, files = list_corpus(url)
  assert all(f.path.startswith(url + "/") for f in files)
  assert {(f.relpath, f.speaker) for f in files} == {
      (str(p.relative_to(root)), p.parent.name) for p in root.rglob("*.wav")}
  out = tmp_path / "bucket"
  out.mkdir()
  chunks, _ = write_listing(files, BucketLikeFileSystem.PREFIX + str(tmp_path / "listing"), 4)
  with TestPipeline() as p:
    _ = (p
         | beam.Create(chunks)
         | BuildShards(DEFAULT_SPEC, SIZE, 60.0, (0.8, 0.1, 0.1), "recording",
                       shard_namer(BucketLikeFileSystem.PREFIX + str(out)),
                       ExampleSerializer(features),
                       work=BucketLikeFileSystem.PREFIX + str(tmp_path / "work")))
  records = [json.loads(line) for part in sorted((tmp_path / "work").glob("records-*"))
             for line in part.read_text().splitlines()]
  assert [(r["file"], r["status"], r["clips"]) for r in records] == sorted(
      [(f.relpath, "encoded", len(segment(load_audio(str(root / f.relpath)))))
       for f in files if not f.relpath.endswith("junk.wav")] + [("ben/junk.wav", "failed", 0)])
  written_here = {p.name: read_shard(str(p), features) for p in out.iterdir()}
  assert sum(len(rows) for rows in written_here.values()) == 15
  for rows in written_here.values():
    for row in rows:
      clip = segment(load_audio(str(root / row["recording"].decode())))[row["clip_index"]]
      with threadpool_limits(1):
        np.testing.assert_array_equal(row["image"], encode_clip(clip.samples, SIZE).image)
