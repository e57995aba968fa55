"""a2i_speakers: speech clips encoded as RGB images, labelled by speaker.

The examples come from a Beam PTransform (pipeline.transforms.EncodeCorpus);
TFDS's own Beam writer shards, shuffles and writes them.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from pipeline import demo, splits
from pipeline.audio import DEFAULT_MAX_SECONDS
from pipeline.corpus import list_corpus
from pipeline.report import BuildError, build_report
from pipeline.spec import DESCRIPTOR_NAMES, EncodingSpec
from pipeline.transforms import AnalyseCorpus, EncodeCorpus, report_record

REPORT_FILE = "build_report.json"


@dataclasses.dataclass
class A2iSpeakersConfig(tfds.core.BuilderConfig):
  """Which corpus, how it is laid out, and how clips are encoded and split."""

  input: str | None = None          # corpus folder or manifest; None: a built-in demo
  demo: str = "demo"                # the built-in corpus used when input is None
  layout: str = "auto"
  speakers: tuple[str, ...] = ()    # class names, in label order
  image_size: int = 512
  split_by: str = "recording"       # or "speaker"
  fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
  max_seconds: float = DEFAULT_MAX_SECONDS
  spec: str = EncodingSpec().to_json()

  @property
  def encoding(self) -> EncodingSpec:
    return EncodingSpec.from_dict(json.loads(self.spec))


class Builder(tfds.core.GeneratorBasedBuilder):
  """Speech clips as RGB images (arXiv 2503.05929), one speaker label each."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {
      "1.0.0": "First release. Encoding spec 1.0.0: 4.096 s clips at 16 kHz, "
               "mu-law green plane, 47 descriptors in a 7x7 grid.",
  }
  BUILDER_CONFIGS = [
      A2iSpeakersConfig(
          name="demo",
          description="Two eSpeak NG voices, 548 utterances each, synthesised at build "
                      "time; 1,096 clips at 512x512 (the paper's size).",
          speakers=tuple(v.speaker for v in demo.DEMO.voices)),
  ]
  DEFAULT_CONFIG_NAME = "demo"

  def _info(self) -> tfds.core.DatasetInfo:
    c = self.builder_config
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(c.image_size, c.image_size, 3),
                                         encoding_format="png"),
            "speaker": tfds.features.ClassLabel(names=list(c.speakers)),
            "recording": tfds.features.Text(),
            "clip_index": tfds.features.Scalar(dtype=np.int32),
            "start_seconds": tfds.features.Scalar(dtype=np.float32),
            "descriptors": tfds.features.Tensor(shape=(len(DESCRIPTOR_NAMES),),
                                                dtype=np.float32),
        }),
        supervised_keys=("image", "speaker"),
        homepage="https://arxiv.org/abs/2503.05929",
        metadata=tfds.core.MetadataDict(
            encoding=c.encoding.to_dict(), image_size=c.image_size,
            descriptor_names=list(DESCRIPTOR_NAMES), input=c.input or f"built-in:{c.demo}",
            corpus_fingerprint=None if c.input else demo.CORPORA[c.demo].fingerprint(),
            layout=c.layout, split_by=c.split_by, fractions=list(c.fractions)),
    )

  def _split_generators(self, dl_manager, pipeline):
    import apache_beam as beam

    c = self.builder_config
    root = c.input or demo.materialise(demo.CORPORA[c.demo], str(dl_manager.download_dir))
    layout, files = list_corpus(root, c.layout)
    usable = [f for f in files if f.status == "audio"]
    skipped = [report_record(f, "skipped", f.status, f.detail)
               for f in files if f.status != "audio"]
    if not usable:
      raise BuildError(f"no audio file found under {root} ({len(files)} files, layout {layout})")

    # Pass 1: decode and cut every file, to know which recordings give clips.
    records, self._analysis_counters = self._analyse(usable, pipeline.options)
    encoded = [r for r in records if r["status"] == "encoded"]
    if not encoded:
      failures = collections.Counter(r["reason"] for r in records)
      raise BuildError("no file of the corpus could be used: " + ", ".join(
          f"{n} {reason}" for reason, n in sorted(failures.items())))
    assignment = splits.assign({(r["speaker"], r["group"]) for r in encoded}, c.fractions,
                               c.split_by)
    for r in encoded:
      r["split"] = assignment[(r["speaker"], r["group"])]
    self._records, self._layout = skipped + records, layout

    # Pass 2 (this pipeline, written by TFDS): encode the recordings that gave clips.
    split_of = {r["file"]: r["split"] for r in encoded}
    listing = self._write_listing(
        "_encode_listing.jsonl", [(f, split_of[f.relpath]) for f in usable
                                  if f.relpath in split_of])
    examples = (pipeline
                | "ReadListing" >> beam.io.ReadFromText(listing)
                | "ParseListing" >> beam.Map(_parse_listing)
                | "EncodeCorpus" >> EncodeCorpus(c.encoding, c.image_size, c.max_seconds))
    generate = beam.ptransform_fn(self._generate_examples)
    present = set(split_of.values())
    return {name: examples[name] | f"{name.capitalize()}Examples" >> generate()
            for name in splits.SPLITS if name in present}

  def _generate_examples(self, keyed_examples):
    """(key, example) pairs of one split, as EncodeCorpus made them."""
    return keyed_examples

  def _write_listing(self, name, items) -> str:
    """The listing goes through a file, not the pipeline graph: on a cluster a
    million-file corpus would not fit in a job description."""
    path = epath.Path(self.data_dir) / name
    path.write_text("".join(json.dumps([dataclasses.asdict(f), split], ensure_ascii=True) + "\n"
                            for f, split in items))
    return os.fspath(path)

  def _analyse(self, usable, options):
    import apache_beam as beam

    listing = self._write_listing("_analysis_listing.jsonl", [(f, None) for f in usable])
    parts = epath.Path(self.data_dir) / "_analysis"
    with beam.Pipeline(options=options) as p:
      _ = (p
           | "ReadListing" >> beam.io.ReadFromText(listing)
           | "ParseListing" >> beam.Map(lambda line: _parse_listing(line)[0])
           | "AnalyseCorpus" >> AnalyseCorpus(self.builder_config.encoding,
                                              self.builder_config.max_seconds)
           | "ReportToJson" >> beam.Map(json.dumps, sort_keys=True)
           | "WriteReportParts" >> beam.io.WriteToText(os.fspath(parts / "part"),
                                                      file_name_suffix=".jsonl"))
    counters = _counters(p.result)
    records = [json.loads(line) for part in sorted(parts.iterdir())
               for line in part.read_text(encoding="utf-8").splitlines() if line.strip()]
    parts.rmtree()
    epath.Path(listing).unlink()
    return records, counters

  def _process_pipeline_result(self, pipeline_result) -> None:
    """Writes build_report.json beside the data, inside TFDS's temporary
    folder: it appears together with the dataset or not at all."""
    (epath.Path(self.data_dir) / "_encode_listing.jsonl").unlink()
    counters = dict(self._analysis_counters)
    for name, value in _counters(pipeline_result).items():
      counters["encode_" + name] = value
    report = build_report(self._records, counters, config=self.builder_config,
                          layout=self._layout, version=str(self.version))
    (epath.Path(self.data_dir) / REPORT_FILE).write_text(
        json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")


def _parse_listing(line: str):
  from pipeline.corpus import CorpusFile

  fields, split = json.loads(line)
  return CorpusFile(**fields), split


def _counters(pipeline_result) -> dict[str, int]:
  out = {}
  try:
    for c in pipeline_result.metrics().query()["counters"]:
      if c.key.metric.namespace == "a2i":
        value = c.committed if c.committed is not None else c.attempted
        out[c.key.metric.name] = out.get(c.key.metric.name, 0) + int(value)
  except Exception:  # some runners do not report metrics
    pass
  return dict(sorted(out.items()))
