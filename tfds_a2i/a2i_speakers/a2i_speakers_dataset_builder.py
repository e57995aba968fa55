"""a2i_speakers: speech clips encoded as RGB images, labelled by speaker.

The examples come from a Beam PTransform (pipeline.transforms.EncodeCorpus);
TFDS's own Beam writer shards, shuffles and writes them.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import tensorflow_datasets as tfds

from pipeline import demo, splits
from pipeline.audio import DEFAULT_MAX_SECONDS
from pipeline.corpus import list_corpus
from pipeline.report import BuildError, build_report
from pipeline.spec import DESCRIPTOR_NAMES, EncodingSpec
from pipeline.transforms import EncodeCorpus, report_record

REPORT_FILE = "build_report.json"
_LISTING = "_listing.jsonl"
_REPORT_PARTS = "_report_parts"


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
            layout=c.layout, split_by=c.split_by, fractions=list(c.fractions)),
    )

  def _split_generators(self, dl_manager, pipeline):
    import apache_beam as beam

    c = self.builder_config
    root = c.input or demo.materialise(demo.CORPORA[c.demo], str(dl_manager.download_dir))
    layout, files = list_corpus(root, c.layout)
    usable = [f for f in files if f.status == "audio"]
    assignment = splits.assign({(f.speaker, f.group) for f in usable}, c.fractions, c.split_by)
    assigned = [(f, assignment[(f.speaker, f.group)]) for f in usable]
    self._skipped = [report_record(f, None, "skipped", f.status, f.detail)
                     for f in files if f.status != "audio"]
    self._layout = layout
    if not assigned:
      raise BuildError(f"no audio file found under {root} ({len(files)} files, layout {layout})")

    # The listing goes through a file, not the pipeline graph: on a cluster a
    # million-file corpus would not fit in a job description.
    listing = os.path.join(self.data_dir, _LISTING)
    with open(listing, "w", encoding="utf-8") as out:
      for f, split in assigned:
        out.write(json.dumps([dataclasses.asdict(f), split], ensure_ascii=True) + "\n")
    encoded = (pipeline
               | "ReadListing" >> beam.io.ReadFromText(listing)
               | "ParseListing" >> beam.Map(_parse_listing)
               | "EncodeCorpus" >> EncodeCorpus(c.encoding, c.image_size, c.max_seconds))
    _ = (encoded["reports"]
         | "ReportToJson" >> beam.Map(json.dumps, sort_keys=True)
         | "WriteReportParts" >> beam.io.WriteToText(
             os.path.join(self.data_dir, _REPORT_PARTS, "part"), file_name_suffix=".jsonl"))
    by_split = encoded["examples"] | "PartitionBySplit" >> beam.Partition(
        lambda example, n: splits.SPLITS.index(example[0]), len(splits.SPLITS))
    present = {split for _, split in assigned}
    generate = beam.ptransform_fn(self._generate_examples)
    return {name: by_split[i] | f"{name.capitalize()}Examples" >> generate()
            for i, name in enumerate(splits.SPLITS) if name in present}

  def _generate_examples(self, encoded):
    """One split's (split, key, example) records -> TFDS (key, example) pairs."""
    import apache_beam as beam

    return encoded | "DropSplit" >> beam.Map(lambda record: record[1:])

  def _process_pipeline_result(self, pipeline_result) -> None:
    """Writes build_report.json beside the data, inside TFDS's temporary
    folder: it appears together with the dataset or not at all."""
    parts_dir = os.path.join(self.data_dir, _REPORT_PARTS)
    records = list(self._skipped)
    for name in sorted(os.listdir(parts_dir)):
      with open(os.path.join(parts_dir, name), encoding="utf-8") as f:
        records.extend(json.loads(line) for line in f if line.strip())
      os.remove(os.path.join(parts_dir, name))
    os.rmdir(parts_dir)
    os.remove(os.path.join(self.data_dir, _LISTING))
    report = build_report(records, _counters(pipeline_result), config=self.builder_config,
                          layout=self._layout, version=str(self.version))
    with open(os.path.join(self.data_dir, REPORT_FILE), "w", encoding="utf-8") as f:
      json.dump(report, f, indent=1, ensure_ascii=False)
    if report["summary"]["clips"] == 0:
      raise BuildError("no file of the corpus could be used: "
                       + ", ".join(f"{n} {r}" for r, n in report["summary"]["failures"].items()))


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
