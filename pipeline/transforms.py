"""Beam transforms that encode a listed corpus: decode -> cut -> encode.

    reports = files | 'AnalyseCorpus' >> AnalyseCorpus(spec, max_seconds)
    examples = files_with_splits | 'EncodeCorpus' >> EncodeCorpus(spec, image_size, max_seconds)
    examples['train'], examples['validation'], examples['test']   # (key, example)

Each DoFn does one thing and counts it. A file that cannot be used goes to
the `failed` output with its reason; every file cut into clips emits one
report record, so the analysis accounts for each file exactly once. Splits
are assigned between the two passes, from the recordings that produced
clips, so broken files never take a speaker's validation or test places and
no split is announced that would end up empty.
"""

from __future__ import annotations

import dataclasses
import io

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline import splits
from pipeline.audio import AudioError, load_audio
from pipeline.clips import segment
from pipeline.corpus import CorpusFile
from pipeline.encode import encode_clip
from pipeline.spec import EncodingSpec

NAMESPACE = "a2i"
FAILED = "failed"
REPORT = "report"


def report_record(f: CorpusFile, status: str, reason: str = "", detail: str = "",
                  clips: int = 0, seconds: float = 0.0) -> dict:
  return {"file": f.relpath, "speaker": f.speaker, "group": f.group, "split": None,
          "status": status, "reason": reason, "detail": detail, "clips": clips,
          "seconds": round(seconds, 3)}


def example_key(f: CorpusFile, clip_index: int) -> str:
  return f"{f.relpath}#{clip_index:05d}"


class _CoreDoFn(beam.DoFn):
  """Runs the numpy core with single-threaded BLAS in every worker process:
  Beam parallelises across workers, and a multi-threaded matrix product sums
  in another order, which would change descriptors in their last bits."""

  def setup(self):
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


class Decode(_CoreDoFn):
  """file or (file, split) -> (file, split, waveform at the working rate)."""

  def __init__(self, spec: EncodingSpec, max_seconds: float):
    self.spec, self.max_seconds = spec, max_seconds
    self.decoded = Metrics.counter(NAMESPACE, "files_decoded")
    self.seconds = Metrics.counter(NAMESPACE, "audio_seconds_decoded")

  def process(self, item):
    f, split = item if isinstance(item, tuple) else (item, None)
    notes = []
    try:
      x = load_audio(f.path, self.spec, self.max_seconds, notes)
    except AudioError as e:
      Metrics.counter(NAMESPACE, f"files_failed_{e.reason}").inc()
      yield beam.pvalue.TaggedOutput(FAILED, report_record(f, "failed", e.reason, e.detail))
      return
    self.decoded.inc()
    self.seconds.inc(int(round(len(x) / self.spec.sample_rate)))
    if notes:
      Metrics.counter(NAMESPACE, "files_repaired").inc()
      f = dataclasses.replace(f, detail="; ".join(notes))
    yield f, split, x


class Cut(_CoreDoFn):
  """(file, split, waveform) -> (file, split, clip) for each clip kept."""

  def __init__(self, spec: EncodingSpec):
    self.spec = spec
    self.clips = Metrics.counter(NAMESPACE, "clips_cut")

  def process(self, item):
    f, split, x = item
    seconds = len(x) / self.spec.sample_rate
    try:
      clips = segment(x, self.spec)
    except AudioError as e:
      Metrics.counter(NAMESPACE, f"files_failed_{e.reason}").inc()
      yield beam.pvalue.TaggedOutput(
          FAILED, report_record(f, "failed", e.reason, e.detail, seconds=seconds))
      return
    self.clips.inc(len(clips))
    yield beam.pvalue.TaggedOutput(
        REPORT, report_record(f, "encoded", detail=f.detail, clips=len(clips), seconds=seconds))
    for clip in clips:
      yield f, split, clip


def png_bytes(image) -> bytes:
  """Lossless PNG at zlib level 1: 4x faster than TFDS's default encoder for
  a ~30 % larger file (the green plane is noise to zlib at any level)."""
  from PIL import Image

  buffer = io.BytesIO()
  Image.fromarray(image, "RGB").save(buffer, format="PNG", compress_level=1)
  return buffer.getvalue()


class Encode(_CoreDoFn):
  """(file, split, clip) -> (split, key, example) in the dataset's features."""

  def __init__(self, spec: EncodingSpec, image_size: int):
    self.spec, self.image_size = spec, image_size
    self.encoded = Metrics.counter(NAMESPACE, "clips_encoded")

  def process(self, item):
    f, split, clip = item
    encoded = encode_clip(clip.samples, self.image_size, self.spec, require_speech=False)
    self.encoded.inc()
    yield split, example_key(f, clip.index), {
        "image": png_bytes(encoded.image),
        "speaker": f.speaker,
        "recording": f.relpath,
        "clip_index": clip.index,
        "start_seconds": clip.start_seconds(self.spec),
        "descriptors": encoded.descriptors,
    }


def _decode_and_cut(files, spec: EncodingSpec, max_seconds: float):
  """Reshuffle -> Decode -> Cut, the head both passes share: (decoded, cut) results."""
  decoded = (files
             | "Reshuffle" >> beam.Reshuffle()  # fan the files out over workers
             | "Decode" >> beam.ParDo(Decode(spec, max_seconds)).with_outputs(
                 FAILED, main="audio"))
  cut = decoded.audio | "Cut" >> beam.ParDo(Cut(spec)).with_outputs(FAILED, REPORT, main="clips")
  return decoded, cut


class AnalyseCorpus(beam.PTransform):
  """PCollection[CorpusFile] -> one report record per file: clips, or why not."""

  def __init__(self, spec: EncodingSpec, max_seconds: float):
    super().__init__()
    self.spec, self.max_seconds = spec, max_seconds

  def expand(self, files):
    decoded, cut = _decode_and_cut(files, self.spec, self.max_seconds)
    return (decoded[FAILED], cut[FAILED], cut[REPORT]) | "MergeReports" >> beam.Flatten()


class EncodeCorpus(beam.PTransform):
  """PCollection[(CorpusFile, split)] -> {split: PCollection[(key, example)]}."""

  def __init__(self, spec: EncodingSpec, image_size: int, max_seconds: float):
    super().__init__()
    self.spec, self.image_size, self.max_seconds = spec, image_size, max_seconds

  def expand(self, files):
    # These files all passed the analysis; failures here are only counted.
    _, cut = _decode_and_cut(files, self.spec, self.max_seconds)
    encoded = cut.clips | "Encode" >> beam.ParDo(Encode(self.spec, self.image_size))
    by_split = encoded | "PartitionBySplit" >> beam.Partition(
        lambda example, n: splits.SPLITS.index(example[0]), len(splits.SPLITS))
    return {name: by_split[i] | f"Keyed{name.capitalize()}" >> beam.Map(lambda e: e[1:])
            for i, name in enumerate(splits.SPLITS)}
