"""Beam transforms that turn a listed corpus into written shards.

    records, shards = files | 'BuildShards' >> BuildShards(spec, image_size, ...)

One job, two passes over the audio, and only small things between them:

1. AnalyseCorpus: decode and cut every file, one report record each (clips,
   or the reason it cannot be used).
2. PlanShards: from those records alone, assign splits (pipeline.splits)
   and deal recordings into shards (pipeline.shards): a singleton plan.
3. WriteShard, one task per shard after a Reshuffle: decode, cut, encode,
   serialise and write the shard's TFRecord file, all in the worker that
   owns the shard. Images never cross a shuffle, so memory is bounded by a
   shard and workers scale until the disk does.

Each DoFn does one thing and counts it. A file that cannot be used goes to
the `failed` output with its reason. Splits are assigned from the files that
gave clips, so broken files never take a speaker's validation or test
places and no split is announced that would end up empty.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from typing import Callable

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from pipeline import shards
from pipeline.audio import AudioError, load_audio
from pipeline.bulk import prepare_process
from pipeline.clips import clips_of, segment
from pipeline.corpus import CorpusFile, is_url
from pipeline.encode import encode_clip
from pipeline.fingerprint import fingerprint
from pipeline.report import report_record
from pipeline.spec import EncodingSpec

NAMESPACE = "a2i"
FAILED = "failed"


def open_with_beam(path: str):
  """(stream, size) of a gs://, s3://, hdfs://... object, through Beam's filesystems."""
  from apache_beam.io.filesystem import BeamIOError

  try:
    size = FileSystems.match([path])[0].metadata_list[0].size_in_bytes
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED), size
  except (BeamIOError, IndexError, ValueError) as e:
    raise OSError(str(e).splitlines()[0][:200]) from None


def opener_for(path: str):
  return open_with_beam if is_url(path) else None


def example_key(f: CorpusFile, clip_index: int) -> str:
  return f"{f.relpath}#{clip_index:05d}"


class _CoreDoFn(beam.DoFn):
  """Runs the numpy core in a worker process set up for encoding in bulk
  (pipeline.bulk: one BLAS thread, so descriptors are the same bits on any
  machine; freed memory reused from clip to clip)."""

  def setup(self):
    prepare_process()


class Decode(_CoreDoFn):
  """file -> (file, waveform at the working rate)."""

  def __init__(self, spec: EncodingSpec, max_seconds: float):
    self.spec, self.max_seconds = spec, max_seconds
    self.decoded = Metrics.counter(NAMESPACE, "files_decoded")
    self.seconds = Metrics.counter(NAMESPACE, "audio_seconds_decoded")

  def process(self, f):
    notes = []
    try:
      x = load_audio(f.path, self.spec, self.max_seconds, notes, opener_for(f.path))
    except AudioError as e:
      Metrics.counter(NAMESPACE, f"files_failed_{e.reason}").inc()
      yield beam.pvalue.TaggedOutput(FAILED, (f, report_record(f, "failed", e.reason, e.detail)))
      return
    self.decoded.inc()
    self.seconds.inc(int(round(len(x) / self.spec.sample_rate)))
    if notes:
      Metrics.counter(NAMESPACE, "files_repaired").inc()
      f = dataclasses.replace(f, detail="; ".join(notes))
    yield f, x


class Cut(_CoreDoFn):
  """(file, waveform) -> (file, report record): how many clips it gives, or why none."""

  def __init__(self, spec: EncodingSpec):
    self.spec = spec
    self.clips = Metrics.counter(NAMESPACE, "clips_cut")

  def process(self, item):
    f, x = item
    seconds = len(x) / self.spec.sample_rate
    try:
      clips = segment(x, self.spec)
    except AudioError as e:
      Metrics.counter(NAMESPACE, f"files_failed_{e.reason}").inc()
      yield f, report_record(f, "failed", e.reason, e.detail, seconds=seconds)
      return
    self.clips.inc(len(clips))
    # The fingerprint goes to the plan (which encodes a recording stored
    # twice once), not to the report.
    yield f, dict(report_record(f, "encoded", detail=f.detail, clips=len(clips),
                                seconds=seconds), fingerprint=fingerprint(x))


def png_bytes(image) -> bytes:
  """Lossless PNG at zlib level 1: 4x faster than TFDS's default encoder for
  a ~30 % larger file (the green plane is noise to zlib at any level)."""
  from PIL import Image

  buffer = io.BytesIO()
  Image.fromarray(image, "RGB").save(buffer, format="PNG", compress_level=1)
  return buffer.getvalue()


def clip_example(f: CorpusFile, clip, spec: EncodingSpec, image_size: int) -> dict:
  """One clip in the dataset's features (image as PNG bytes)."""
  encoded = encode_clip(clip.samples, image_size, spec, require_speech=False)
  return {
      "image": png_bytes(encoded.image),
      "speaker": f.speaker,
      "recording": f.relpath,
      "clip_index": clip.index,
      "start_seconds": clip.start_seconds(spec),
      "descriptors": encoded.descriptors,
  }


def _masked_crc(data: bytes) -> bytes:
  """TFRecord's checksum: CRC-32C, rotated right by 15 bits, plus a constant."""
  import google_crc32c

  crc = google_crc32c.value(data)
  return ((((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF).to_bytes(4, "little")


def tfrecord_frame(data: bytes) -> bytes:
  """One record as TFRecord files hold it: its length (uint64), the length's
  checksum, the data, the data's checksum."""
  length = len(data).to_bytes(8, "little")
  return length + _masked_crc(length) + data + _masked_crc(data)


def write_tfrecord(path: str, records) -> int:
  """Writes a TFRecord file through Beam's filesystems (local, gs://, s3://,
  hdfs://), under a temporary name renamed into place at the end: a retried
  or killed task never leaves a half-written shard. Returns its size."""
  partial = path + ".partial"
  size = 0
  with FileSystems.create(partial, compression_type=CompressionTypes.UNCOMPRESSED) as out:
    for data in records:
      frame = tfrecord_frame(data)
      out.write(frame)
      size += len(frame)
  _publish(partial, path)
  return size


def _publish(partial: str, path: str) -> None:
  """Renames a complete shard into place, through Beam's filesystems; a
  retried task's earlier copy (same plan, same bytes) is replaced."""
  if FileSystems.exists(path):
    FileSystems.delete([path])
  FileSystems.rename([partial], [path])


def write_array_record(path: str, records) -> int:
  """Writes an ArrayRecord file (TFDS's random-access format, one record a
  group, as TFDS writes it), under a temporary name renamed into place;
  written locally first when `path` is a bucket's. Returns its size."""
  import tempfile

  from array_record.python.array_record_module import ArrayRecordWriter

  local = tempfile.mkstemp(suffix=".array_record")[1] if is_url(path) else path + ".partial"
  writer = ArrayRecordWriter(local, "group_size:1")
  for data in records:
    writer.write(data)
  writer.close()
  size = os.path.getsize(local)
  if not is_url(path):
    os.replace(local, path)
    return size
  with open(local, "rb") as source, FileSystems.create(
      path + ".partial", compression_type=CompressionTypes.UNCOMPRESSED) as out:
    while chunk := source.read(16 << 20):
      out.write(chunk)
  os.remove(local)
  _publish(path + ".partial", path)
  return size


def write_shard(path: str, records) -> int:
  """A shard in the file format its name says (TFDS's templates name it:
  `...-train.tfrecord-00000-of-00004` or `...-train.array_record-...`)."""
  if ".array_record-" in path.rsplit("/", 1)[-1]:
    return write_array_record(path, records)
  return write_tfrecord(path, records)


class WriteShard(_CoreDoFn):
  """ShardTask -> the shard file written, and what each of its recordings gave.

  The whole heavy chain (decode -> cut -> encode -> serialise -> write) runs
  here, for one shard at a time. Examples are written in the order of a hash
  of their key, so a shard mixes its recordings' clips; holding them until
  then costs one shard's serialised bytes.
  """

  def __init__(self, spec: EncodingSpec, image_size: int, max_seconds: float,
               shard_path: Callable[[str, int, int], str], serialize: Callable[[dict], bytes],
               outcomes: str | None = None):
    self.spec, self.image_size, self.max_seconds = spec, image_size, max_seconds
    self.shard_path, self.serialize, self.outcomes = shard_path, serialize, outcomes
    self.encoded = Metrics.counter(NAMESPACE, "clips_encoded")
    self.written = Metrics.counter(NAMESPACE, "shards_written")
    # Outside the report's namespace: a resumed build's report equals an
    # uninterrupted one's, whose counters describe the dataset's shards.
    self.reused = Metrics.counter(NAMESPACE + ".resume", "shards_resumed")

  def _outcome_path(self, path: str) -> str | None:
    """Where a shard's outcome is recorded once the shard is complete."""
    if not self.outcomes:
      return None
    return self.outcomes.rstrip("/") + "/" + path.replace("\\", "/").rsplit("/", 1)[-1] + ".json"

  def process(self, task: shards.ShardTask):
    path = self.shard_path(task.split, task.index, task.num_shards)
    record = self._outcome_path(path)
    if record and FileSystems.exists(path) and FileSystems.exists(record):
      # Written by an interrupted build of the same plan: the same bytes.
      with FileSystems.open(record, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        outcome = json.loads(f.read().decode("utf-8"))
      self.reused.inc()
      self.encoded.inc(outcome["examples"])
      self.written.inc()
      yield outcome
      return
    examples, files = [], []
    for f, expected in task.files:
      outcome = {"file": f.relpath, "clips": 0, "expected": expected}
      try:
        clips = clips_of(f.path, self.spec, self.max_seconds, opener_for(f.path))
      except AudioError as e:  # the file changed or vanished since the analysis
        Metrics.counter(NAMESPACE, f"files_failed_{e.reason}_at_encoding").inc()
        files.append(dict(outcome, reason=e.reason, detail=e.detail))
        continue
      for clip in clips:
        key = example_key(f, clip.index)
        example = self.serialize(clip_example(f, clip, self.spec, self.image_size))
        examples.append((hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest(),
                         example))
        self.encoded.inc()
      files.append(dict(outcome, clips=len(clips)))
    examples.sort()
    num_bytes = write_shard(path, (data for _, data in examples))
    self.written.inc()
    outcome = {"split": task.split, "index": task.index, "num_shards": task.num_shards,
               "examples": len(examples), "bytes": num_bytes, "files": files}
    if record:
      with FileSystems.create(record, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(json.dumps(outcome, sort_keys=True).encode("utf-8"))
    yield outcome


class AnalyseCorpus(beam.PTransform):
  """PCollection[CorpusFile] -> (file, report record) per file: clips, or why not."""

  def __init__(self, spec: EncodingSpec, max_seconds: float):
    super().__init__()
    self.spec, self.max_seconds = spec, max_seconds

  def expand(self, files):
    decoded = (files
               | "FanOutFiles" >> beam.Reshuffle()
               | "Decode" >> beam.ParDo(Decode(self.spec, self.max_seconds)).with_outputs(
                   FAILED, main="audio"))
    cut = decoded.audio | "Cut" >> beam.ParDo(Cut(self.spec))
    return (decoded[FAILED], cut) | "MergeReports" >> beam.Flatten()


def _clip_count(item):
  """(file, record) -> (file, clips, audio fingerprint) for files that gave
  clips: all the plan needs."""
  f, record = item
  if record["status"] == "encoded":
    yield f, record["clips"], record["fingerprint"]


def _report_record(item) -> dict:
  """(file, record) -> the record as the build report keeps it."""
  return {k: v for k, v in item[1].items() if k != "fingerprint"}


def _duplicate_record(item) -> dict:
  """A correction to a file's analysis record (applied by the report): the
  file is skipped as a duplicate, or, under official splits, kept and noted."""
  relpath, original, official = item
  if official:
    return {"file": relpath, "same_audio_as": original, "correction": "note",
            "detail": f"same audio as {original}"}
  return {"file": relpath, "status": "skipped", "reason": "duplicate",
          "detail": f"same audio as {original}", "clips": 0, "correction": True}


class BuildShards(beam.PTransform):
  """PCollection[CorpusFile] -> (analysis record per file, outcome per shard written).

  A shard's outcome names its split and, per recording, the clips written:
  with the analysis records, everything the build report needs.
  `shard_path(split, index, num_shards)` names a shard's file, `serialize`
  turns an example into bytes: both come from the dataset builder.
  """

  def __init__(self, spec: EncodingSpec, image_size: int, max_seconds: float,
               fractions, split_by: str, shard_path, serialize, outcomes: str | None = None):
    super().__init__()
    self.spec, self.image_size, self.max_seconds = spec, image_size, max_seconds
    self.fractions, self.split_by = tuple(fractions), split_by
    self.shard_path, self.serialize, self.outcomes = shard_path, serialize, outcomes

  def expand(self, files):
    analysed = files | "AnalyseCorpus" >> AnalyseCorpus(self.spec, self.max_seconds)
    plan = (analysed
            | "ClipCounts" >> beam.FlatMap(_clip_count)
            | "CollectCounts" >> beam.combiners.ToList()
            | "PlanShards" >> beam.Map(shards.plan, self.image_size, self.fractions,
                                       self.split_by))
    # Files whose audio another file already holds: not encoded, reported.
    duplicates = (plan
                  | "Duplicates" >> beam.FlatMap(
                      lambda p: [(rel, first, p.official)
                                 for rel, first in sorted(p.duplicates.items())]))
    records = ((analysed | "Records" >> beam.Map(_report_record),
                duplicates | "DuplicateRecords" >> beam.Map(_duplicate_record))
               | "AllRecords" >> beam.Flatten())
    written = (plan
               | "ShardTasks" >> beam.FlatMap(lambda p: p.tasks)
               | "FanOutShards" >> beam.Reshuffle()
               | "WriteShards" >> beam.ParDo(WriteShard(self.spec, self.image_size,
                                                        self.max_seconds, self.shard_path,
                                                        self.serialize, self.outcomes)))
    return records, written
