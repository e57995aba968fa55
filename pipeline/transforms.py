"""Beam transforms that turn a listed corpus into written shards.

    written = chunks | 'BuildShards' >> BuildShards(spec, image_size, ..., work=folder)

One job, two passes over the audio, and nothing per file between them: the
runner carries only names of files that the workers write and read through
Beam's filesystems, so neither the launcher nor the runner holds anything
per file of the corpus (docs/scaling.md).

1. AnalyseChunk, one task per listing chunk (`write_listing`): decode and
   cut every file of the chunk, and write one analysis line each (clips, or
   the reason it cannot be used; its audio's fingerprint) to a file of its own.
2. PlanShards, one task: from those files alone, assign splits
   (pipeline.splits), find the files that repeat another (the same file under
   two names, the same audio in two formats), deal recordings into shards
   (pipeline.shards), and write each shard's task, the report's records in
   file order and the checks (leaks, setups).
3. WriteShard, one task per shard after a Reshuffle: read its task, decode,
   cut, encode, serialise and write the shard's file, all in the worker that
   owns the shard. Images never cross a shuffle, so memory is bounded by a
   shard and workers scale until the disk does. Its outcome names, per
   recording, the clips written and their median pitch.
4. PitchCheck, one task once every shard is written: from the shards'
   outcome files, the held-out recordings whose pitch is unlike their
   speaker's training recordings' (pipeline.report.judge_pitch), written
   for the report's checks.

Each DoFn does one thing and counts it. A file that cannot be used gets its
reason in the report. Splits are assigned from the files that gave clips, so
broken files never take a speaker's validation or test places and no split
is announced that would end up empty.
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
from pipeline.audio import AudioError, load_recording
from pipeline.bulk import prepare_process
from pipeline.clips import clips_of, segment
from pipeline.corpus import CorpusFile, is_url
from pipeline.encode import encode_clip
from pipeline.fingerprint import fingerprint
from pipeline.report import recording_f0, report_record
from pipeline.spec import DESCRIPTOR_NAMES, EncodingSpec

NAMESPACE = "a2i"


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


def analyse_file(f: CorpusFile, spec: EncodingSpec, max_seconds: float):
  """(report record, fingerprint or None, the job counters it adds) of one
  file: how many clips it gives, or why none."""
  notes = []
  try:
    x, rate = load_recording(f.path, spec, max_seconds, notes, opener_for(f.path))
  except AudioError as e:
    return report_record(f, "failed", e.reason, e.detail), None, {f"files_failed_{e.reason}": 1}
  counts = {"files_decoded": 1, "audio_seconds_decoded": int(round(len(x) / spec.sample_rate))}
  if notes:
    counts["files_repaired"] = 1
    f = dataclasses.replace(f, detail="; ".join(notes))
  seconds = len(x) / spec.sample_rate
  try:
    clips = segment(x, spec)
  except AudioError as e:
    counts[f"files_failed_{e.reason}"] = 1
    return (report_record(f, "failed", e.reason, e.detail, seconds=seconds, sample_rate=rate),
            None, counts)
  counts["clips_cut"] = len(clips)
  return (report_record(f, "encoded", detail=f.detail, clips=len(clips), seconds=seconds,
                        sample_rate=rate, band=spec.analysis_band(rate)),
          fingerprint(x), counts)


def _count(counts: dict) -> None:
  for name, n in counts.items():
    Metrics.counter(NAMESPACE, name).inc(n)


def read_lines(path: str):
  """The lines of a text file, through Beam's filesystems."""
  with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
    for line in io.TextIOWrapper(f, encoding="utf-8"):
      if line.strip():
        yield line


def write_bytes(path: str, chunks) -> int:
  """Writes byte strings to `path` through Beam's filesystems (local, gs://,
  s3://, hdfs://), under a temporary name renamed into place at the end: a
  retried or killed task never leaves a half-written file. Returns its size."""
  size = 0
  with FileSystems.create(path + ".partial",
                          compression_type=CompressionTypes.UNCOMPRESSED) as out:
    for chunk in chunks:
      out.write(chunk)
      size += len(chunk)
  _publish(path + ".partial", path)
  return size


def write_text(path: str, lines) -> None:
  """Writes lines to `path` as write_bytes does: a retried task rewrites
  the same file."""
  write_bytes(path, (line.encode("utf-8") for line in lines))


def write_parts(lines, folder: str, prefix: str, per_part: int,
                at_least_one: bool = False) -> list[str]:
  """Streams lines into `folder/<prefix>-00000.jsonl`, ... of `per_part`
  lines each, never holding more than one part (and writes one empty part
  for no lines with `at_least_one`). Returns the parts' paths."""
  paths, part = [], []

  def flush():
    path = _join(folder, f"{prefix}-{len(paths):05d}.jsonl")
    write_text(path, part)
    paths.append(path)
    part.clear()

  for line in lines:
    part.append(line)
    if len(part) == per_part:
      flush()
  if part or (at_least_one and not paths):
    flush()
  return paths


def _join(folder: str, name: str) -> str:
  return folder.rstrip("/") + "/" + name


def write_listing(files, folder: str, per_chunk: int = 200) -> tuple[list[str], str]:
  """Streams CorpusFiles into listing chunks (JSON lines) of `per_chunk`
  files in `folder`, never holding more than one chunk. Returns (the chunk
  paths, a digest of the whole listing)."""
  digest = hashlib.sha256()

  def lines():
    for f in files:
      line = json.dumps(dataclasses.asdict(f), ensure_ascii=True, sort_keys=True) + "\n"
      digest.update(line.encode("utf-8"))
      yield line

  paths = write_parts(lines(), folder, "listing", per_chunk)
  return paths, digest.hexdigest()


class AnalyseChunk(_CoreDoFn):
  """A listing chunk -> the path of its analysis: one JSON line per file,
  {"file": the CorpusFile, "record": its report record, "fingerprint":
  [samples, hex of the values] or null, "counts": the job counters it
  added}. An analysis already there (taken over from a killed build of the
  same listing, settings and code) is read instead of made again, and its
  counters are counted again: the report is the same either way."""

  def __init__(self, spec: EncodingSpec, max_seconds: float, folder: str):
    self.spec, self.max_seconds, self.folder = spec, max_seconds, folder

  def process(self, chunk: str):
    path = _join(self.folder, chunk.replace("\\", "/").rsplit("/", 1)[-1])
    if FileSystems.exists(path):
      for line in read_lines(path):
        _count(json.loads(line)["counts"])
      Metrics.counter(NAMESPACE + ".resume", "chunks_resumed").inc()
      yield path
      return
    lines = []
    for line in read_lines(chunk):
      f = CorpusFile(**json.loads(line))
      record, fp, counts = analyse_file(f, self.spec, self.max_seconds)
      _count(counts)
      lines.append(json.dumps({"file": dataclasses.asdict(f), "record": record,
                               "fingerprint": fp and [fp.samples, fp.packed.hex()],
                               "counts": counts}, ensure_ascii=True, sort_keys=True) + "\n")
    write_text(path, lines)
    yield path


def png_bytes(image) -> bytes:
  """Lossless PNG at zlib level 1: 4x faster than TFDS's default encoder for
  a ~30 % larger file (the green plane is noise to zlib at any level)."""
  from PIL import Image

  buffer = io.BytesIO()
  Image.fromarray(image, "RGB").save(buffer, format="PNG", compress_level=1)
  return buffer.getvalue()


def clip_example(f: CorpusFile, clip, spec: EncodingSpec, image_size: int) -> dict:
  """One clip in the dataset's features (image as PNG bytes)."""
  encoded = encode_clip(clip.samples, image_size, spec, require_speech=False, band=clip.band)
  return {
      "image": png_bytes(encoded.image),
      "speaker": f.speaker,
      "recording": f.relpath,
      "clip_index": clip.index,
      "start_seconds": clip.start_seconds(spec),
      "descriptors": encoded.descriptors,
  }


F0_MEDIAN = DESCRIPTOR_NAMES.index("f0_median")   # a clip's median f0, in its descriptors


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
  return write_bytes(path, (tfrecord_frame(data) for data in records))


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
  """ShardTask (or the path of one, written by PlanShards) -> the shard file
  written, and what each of its recordings gave.

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

  def process(self, task):
    if isinstance(task, str):
      task = read_task(task)
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
      outcome = {"file": f.relpath, "speaker": f.speaker, "clips": 0, "expected": expected}
      try:
        clips = clips_of(f.path, self.spec, self.max_seconds, opener_for(f.path))
      except AudioError as e:  # the file changed or vanished since the analysis
        Metrics.counter(NAMESPACE, f"files_failed_{e.reason}_at_encoding").inc()
        files.append(dict(outcome, reason=e.reason, detail=e.detail))
        continue
      f0s = []
      for clip in clips:
        key = example_key(f, clip.index)
        example = clip_example(f, clip, self.spec, self.image_size)
        f0s.append(example["descriptors"][F0_MEDIAN])
        examples.append((hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest(),
                         self.serialize(example)))
        self.encoded.inc()
      files.append(dict(outcome, clips=len(clips), f0_hz=recording_f0(f0s)))
    examples.sort()
    num_bytes = write_shard(path, (data for _, data in examples))
    self.written.inc()
    outcome = {"split": task.split, "index": task.index, "num_shards": task.num_shards,
               "examples": len(examples), "bytes": num_bytes, "files": files}
    if record:
      with FileSystems.create(record, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(json.dumps(outcome, sort_keys=True).encode("utf-8"))
    yield outcome


def task_line(task: shards.ShardTask) -> str:
  return json.dumps({"split": task.split, "index": task.index, "num_shards": task.num_shards,
                     "files": [[dataclasses.asdict(f), n] for f, n in task.files]},
                    ensure_ascii=True, sort_keys=True) + "\n"


def read_task(path: str) -> shards.ShardTask:
  t = json.loads(next(read_lines(path)))
  return shards.ShardTask(t["split"], t["index"], t["num_shards"],
                          tuple((CorpusFile(**f), n) for f, n in t["files"]))


def _duplicate_record(record: dict, original: str, official: bool) -> dict:
  """A file whose audio another file already holds: skipped (encoded once),
  or, under official splits, kept where the list puts it and noted."""
  if official:
    return dict(record, same_audio_as=original,
                detail="; ".join(filter(None, [record["detail"], f"same audio as {original}"])))
  return dict(record, status="skipped", reason="duplicate", detail=f"same audio as {original}",
              clips=0)


class PlanShards(beam.DoFn):
  """All analysis files (one element: their paths) -> a path per shard task.

  Reads every file's analysis, makes the plan (pipeline.shards: splits,
  duplicates, shards), and writes to `folder`: `tasks/<split>-<index>.json`
  (a shard's recordings), `records-<k>.jsonl` (the report's line of every
  file, `skipped` included, in file order, with its split) and
  `checks.json` (report.leak_checks and report.setup_checks). Everything
  the plan holds is per file, but it is held here, by one worker, not by
  the runner."""

  def __init__(self, image_size: int, fractions, split_by: str, folder: str,
               skipped: str | None = None, speaker_disjoint: bool = False,
               per_part: int = 20000):
    self.image_size, self.fractions, self.split_by = image_size, tuple(fractions), split_by
    self.folder, self.skipped, self.speaker_disjoint = folder, skipped, speaker_disjoint
    self.per_part = per_part

  def process(self, analysis_paths):
    from pipeline.fingerprint import Fingerprint
    from pipeline.report import leak_checks, setup_checks

    records, analysed = {}, []
    for path in sorted(analysis_paths):
      for line in read_lines(path):
        row = json.loads(line)
        f, record = CorpusFile(**row["file"]), row["record"]
        records[f.relpath] = json.dumps(record, sort_keys=True)
        if row["fingerprint"] and record["clips"] > 0:
          samples, packed = row["fingerprint"]
          analysed.append((f, record["clips"], Fingerprint(samples, bytes.fromhex(packed))))
    plan = shards.plan(analysed, self.image_size, self.fractions, self.split_by)
    del analysed
    for task in plan.tasks:
      path = _join(self.folder, f"tasks/{task.split}-{task.index:05d}.json")
      write_text(path, [task_line(task)])
      yield path
    skipped = (json.loads(line) for line in read_lines(self.skipped)) if self.skipped else ()
    for r in skipped:
      records[r["file"]] = json.dumps(r, sort_keys=True)
    encoded = []

    def lines():
      for name in sorted(records):
        r = json.loads(records.pop(name))
        if name in plan.duplicates:
          r = _duplicate_record(r, plan.duplicates[name], plan.official)
        if r["status"] == "encoded" and name in plan.split_of:
          r["split"] = plan.split_of[name]
          encoded.append({k: r.get(k) for k in ("file", "status", "group", "speaker", "split",
                                                "same_audio_as", "sample_rate")})
        yield json.dumps(r, ensure_ascii=True, sort_keys=True) + "\n"

    write_parts(lines(), self.folder, "records", self.per_part, at_least_one=True)
    write_text(_join(self.folder, "checks.json"),
               [json.dumps({**leak_checks(encoded, self.speaker_disjoint),
                            **setup_checks(encoded)})])


def _outcome_files(paths: list[str]):
  """(file, speaker, split, median f0) of every recording the shard
  outcomes at `paths` hold clips of, one outcome file at a time."""
  for path in paths:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
      outcome = json.loads(f.read().decode("utf-8"))
    for r in outcome["files"]:
      if r["clips"]:
        yield r["file"], r["speaker"], outcome["split"], r["f0_hz"]


def write_pitch_check(_, outcomes: str, path: str) -> str:
  """Reads every shard outcome in the folder `outcomes` twice (each
  speaker's training pitches, as floats; then each held-out recording
  against them) and writes the report's pitch check to `path`."""
  from array import array

  from pipeline.report import judge_pitch, pitch_check, pitch_profile

  found = FileSystems.match([outcomes.rstrip("/") + "/*.json"])[0].metadata_list
  paths = sorted(m.path for m in found)
  training = {}
  for _, speaker, split, f0 in _outcome_files(paths):
    if split == "train" and f0:
      training.setdefault(speaker, array("d")).append(f0)
  profiles = {speaker: pitch_profile(f0s) for speaker, f0s in training.items()}
  unlike = [row for file, speaker, split, f0 in _outcome_files(paths)
            if (row := judge_pitch(file, speaker, split, f0, profiles.get(speaker)))]
  write_text(path, [json.dumps(pitch_check(unlike), sort_keys=True)])
  return path


class PitchCheck(beam.PTransform):
  """Shard outcomes -> `path` written, once every shard is: the build
  report's pitch check (pipeline.report.pitch_check), by one worker from
  the outcome files in `outcomes` (what crosses the runner is a count)."""

  def __init__(self, outcomes: str, path: str):
    super().__init__()
    self.outcomes, self.path = outcomes, path

  def expand(self, written):
    return (written
            | "ShardsWritten" >> beam.combiners.Count.Globally()
            | "JudgePitch" >> beam.Map(write_pitch_check, self.outcomes, self.path))


class BuildShards(beam.PTransform):
  """PCollection[path of a listing chunk] -> outcome per shard written.

  A shard's outcome names its split and, per recording, the clips written
  and their median f0. The report's records, in file order with their
  planned split, and the checks are written to `work` (PlanShards; with
  `outcomes`, the folder where each shard's outcome is recorded, the pitch
  check, once every shard is written, to `pitch_check.json`);
  `skipped`, if given, is a
  JSON-lines file of report records of files the listing refused.
  `shard_path(split, index, num_shards)` names a shard's file, `serialize`
  turns an example into bytes: both come from the dataset builder.
  """

  def __init__(self, spec: EncodingSpec, image_size: int, max_seconds: float,
               fractions, split_by: str, shard_path, serialize, work: str,
               outcomes: str | None = None, skipped: str | None = None,
               speaker_disjoint: bool = False):
    super().__init__()
    self.spec, self.image_size, self.max_seconds = spec, image_size, max_seconds
    self.fractions, self.split_by = tuple(fractions), split_by
    self.shard_path, self.serialize, self.outcomes = shard_path, serialize, outcomes
    self.work, self.skipped, self.speaker_disjoint = work, skipped, speaker_disjoint

  def expand(self, chunks):
    planned = (chunks
               | "FanOutChunks" >> beam.Reshuffle()
               | "AnalyseChunks" >> beam.ParDo(AnalyseChunk(self.spec, self.max_seconds,
                                                            _join(self.work, "analysis")))
               | "AllAnalysed" >> beam.combiners.ToList()
               | "PlanShards" >> beam.ParDo(PlanShards(self.image_size, self.fractions,
                                                       self.split_by, self.work, self.skipped,
                                                       self.speaker_disjoint)))
    written = (planned
               | "FanOutShards" >> beam.Reshuffle()
               | "WriteShards" >> beam.ParDo(WriteShard(self.spec, self.image_size,
                                                        self.max_seconds, self.shard_path,
                                                        self.serialize, self.outcomes)))
    if self.outcomes:
      _ = written | "PitchCheck" >> PitchCheck(self.outcomes, _join(self.work, "pitch_check.json"))
    return written
