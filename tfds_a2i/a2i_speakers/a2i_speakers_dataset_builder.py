"""a2i_speakers: speech clips encoded as RGB images, labelled by speaker.

`_info` declares the features; `_download_and_prepare` lists the corpus and
runs one Beam job (pipeline.transforms.BuildShards) whose workers encode and
write the TFRecord shards themselves, with TFDS's example serializer and file
names; the builder then records each split's shard lengths, so `tfds.load`
reads the result like any TFDS dataset. TFDS's generic Beam writer is not
used: it sends every encoded example through one global shuffle, which holds
the corpus in memory and serialises the workers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from tensorflow_datasets.core import example_serializer
from tensorflow_datasets.core.dataset_builder import FileReaderBuilder

from pipeline import demo, splits
from pipeline.audio import DEFAULT_MAX_SECONDS
from pipeline.corpus import stream_corpus
from pipeline.report import REPORT_FILE, BuildError, report_record, report_summary, write_report
from pipeline.spec import DESCRIPTOR_NAMES, EncodingSpec
from tfds_a2i.a2i_speakers.progress import ShardProgress

RESUME_STATE = "_build/state.json"   # what a build was: the next one resumes it if unchanged


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
  splits_file: str | None = None    # an official split list: the splits are exactly its lines

  @property
  def encoding(self) -> EncodingSpec:
    return EncodingSpec.from_dict(json.loads(self.spec))


class Builder(FileReaderBuilder):
  """Speech clips as RGB images (arXiv 2503.05929), one speaker label each."""

  VERSION = tfds.core.Version("2.0.0")
  RELEASE_NOTES = {
      "2.0.0": "Encoding spec 2.0.0: pitch and voicing by Praat's method (candidates, "
               "Viterbi path, intensity-aware voicing) over 75-600 Hz, f0 pixels on a log "
               "75-600 Hz scale, HNR by cross-correlation, tones and modem signals unvoiced; "
               "activity also 6 dB above the noise floor. Shards written by the pipeline's "
               "own workers.",
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
            layout=c.layout, split_by=c.split_by, fractions=list(c.fractions),
            splits_file=c.splits_file),
    )

  def _download_and_prepare(self, dl_manager, download_config) -> None:
    # Beam is imported when a build runs, not when the builder is: reading a
    # dataset, or `--help`, needs neither Beam nor its start-up warnings.
    import apache_beam as beam

    from pipeline.transforms import BuildShards, read_lines, write_listing

    c = self.builder_config
    root = c.input or demo.materialise(demo.CORPORA[c.demo], str(dl_manager.download_dir))
    layout, files = stream_corpus(root, c.layout)
    table = splits.read_splits_file(c.splits_file) if c.splits_file else None

    # Nothing per file stays here: the listing is streamed into chunk files
    # that the workers read, refused entries into a file of report records;
    # the workers write their analysis, the plan, the shards and the report's
    # records beside them, and only file names cross the runner.
    work = epath.Path(self.data_dir) / "_build"
    work.mkdir(parents=True, exist_ok=True)
    count = {"audio": 0, "listed": 0}
    skipped_path = work / "skipped.jsonl"
    with skipped_path.open("w", encoding="utf-8") as skipped:

      def usable():
        for f in (with_official_splits(files, table, skipped) if table is not None else files):
          count["listed"] += 1
          if f.status == "audio":
            count["audio"] += 1
            yield f
          else:
            skipped.write(json.dumps(report_record(f, "skipped", f.status, f.detail),
                                     sort_keys=True) + "\n")

      chunks, listing_sha256 = write_listing(usable(), os.fspath(work / "listing"))
    if not count["audio"]:
      raise BuildError(f"no audio file found under {root} ({count['listed']} files, "
                       f"layout {layout})")
    state = {"listing_sha256": listing_sha256,
             "settings": json.loads(json.dumps(dataclasses.asdict(c), default=str)),
             "file_format": str(self.info.file_format.value), "code": code_digest(),
             "version": str(self.version)}
    (work / "outcomes").mkdir(parents=True, exist_ok=True)
    resumed = self._resume(state)
    (work / "state.json").write_text(json.dumps(state, sort_keys=True))
    build = BuildShards(c.encoding, c.image_size, c.max_seconds, c.fractions, c.split_by,
                        shard_path=ShardPath(self._templates()),
                        serialize=ExampleSerializer(self.info.features), work=os.fspath(work),
                        outcomes=os.fspath(work / "outcomes"), skipped=os.fspath(skipped_path),
                        speaker_disjoint=c.split_by == "speaker" and not c.splits_file)
    with ShardProgress(epath.Path(self.data_dir), count["audio"]), \
        beam.Pipeline(options=download_config.beam_options) as p:
      _ = (p
           | "ListingChunks" >> beam.Create(chunks)
           | "BuildShards" >> build
           | "ShardsToJson" >> beam.Map(json.dumps, sort_keys=True)
           | "WriteShardInfos" >> beam.io.WriteToText(os.fspath(work / "shards"),
                                                      file_name_suffix=".jsonl"))
    shard_infos, deviations = _shard_outcomes(work)
    if resumed is not None:
      print(f"resumed: {resumed} of {len(shard_infos)} shards already written", flush=True)
    counters = _counters(p.result)
    checks = json.loads((work / "checks.json").read_text())
    checks.update(json.loads((work / "pitch_check.json").read_text()))
    parts = sorted(work.glob("records-*.jsonl"))

    def records():
      for part in parts:
        for line in read_lines(os.fspath(part)):
          yield _as_written(json.loads(line), deviations)

    summary = report_summary(records(), counters, checks, config=c, layout=layout,
                             version=str(self.version))
    if not shard_infos:
      work.rmtree()
      raise BuildError("no file of the corpus could be used: " + ", ".join(
          f"{n} {reason}" for reason, n in sorted(summary["summary"]["failures"].items())))
    self.info.set_splits(tfds.core.SplitDict(self._split_infos(shard_infos)))
    # Inside TFDS's temporary folder: the report appears with the data or not at all.
    with (epath.Path(self.data_dir) / REPORT_FILE).open("w", encoding="utf-8") as out:
      write_report(out, summary, records())
    work.rmtree()
    self.report_summary = summary

  def _resume(self, state: dict) -> int | None:
    """Takes over the shards a killed build of the same corpus listing,
    settings, file format and code wrote (complete shards and their
    outcomes: each shard task writes its file under a temporary name and
    renames it when complete, then records what it wrote); any other
    unfinished build folder of this version is removed, saying why.
    Returns how many shards were taken over (None: nothing to resume)."""
    here = epath.Path(self.data_dir)
    resumed = None
    for old in sorted(here.parent.glob(f"incomplete.*_{self.version}")):
      if old == here:
        continue
      try:
        previous = json.loads((old / RESUME_STATE).read_text())
      except (OSError, ValueError):
        previous = None
      if previous == state:
        adopted = []
        for outcome in sorted((old / "_build" / "outcomes").glob("*.json")):
          shard = old / outcome.name[:-len(".json")]
          if shard.exists():
            shard.rename(here / shard.name)
            outcome.rename(here / "_build" / "outcomes" / outcome.name)
            adopted.append(shard.name)
        # Each chunk's analysis is renamed into place once complete, like a shard.
        analysed = sorted((old / "_build" / "analysis").glob("listing-*.jsonl"))
        if analysed:
          (here / "_build" / "analysis").mkdir(parents=True, exist_ok=True)
          for part in analysed:
            part.rename(here / "_build" / "analysis" / part.name)
        resumed = (resumed or 0) + len(adopted)
        print(f"resuming the interrupted build in {old.name}: {len(adopted)} complete shards "
              f"and the analysis of {len(analysed)} listing chunks taken over", flush=True)
      else:
        why = ("it recorded no state" if previous is None else "its " + ", ".join(
            k.replace("_sha256", "") for k in state if previous.get(k) != state[k])
               + " changed")
        print(f"starting over: an interrupted build of this version is not resumed ({why})",
              flush=True)
      old.rmtree()
    return resumed

  def _templates(self) -> dict:
    """Each split's file names, as TFDS reads them (its public template)."""
    return {name: tfds.core.ShardedFileTemplate(
        data_dir=self.data_path, dataset_name=self.name, split=name,
        filetype_suffix=self.info.file_format.file_suffix) for name in splits.SPLITS}

  def _split_infos(self, written: list[dict]) -> list[tfds.core.SplitInfo]:
    templates, infos = self._templates(), []
    for name in splits.SPLITS:
      shards = sorted((s for s in written if s["split"] == name), key=lambda s: s["index"])
      if not shards:
        continue
      if [s["index"] for s in shards] != list(range(shards[0]["num_shards"])):
        raise BuildError(f"split {name}: shards missing from the job's output")
      infos.append(tfds.core.SplitInfo(
          name=name, shard_lengths=[s["examples"] for s in shards],
          num_bytes=sum(s["bytes"] for s in shards), filename_template=templates[name]))
    return infos


def with_official_splits(files, table: dict[str, str], skipped=None):
  """The listing with each audio file's official split, or refused as not
  listed; then report records of the listed paths no corpus file matched,
  written to `skipped` (a text file) when given. A generator."""
  matched = set()
  for f in files:
    split, name = splits.official_split(f.relpath, table)
    if name is not None:
      matched.add(name)
    if f.status != "audio":
      yield f
    elif split is None:
      yield f.refused("not_in_splits_file")
    else:
      yield dataclasses.replace(f, split=split)
  for name in sorted(set(table) - matched):
    record = {"file": name, "speaker": None, "group": None, "split": table[name],
              "status": "skipped", "reason": "listed_not_found",
              "detail": f"the splits file puts it in {table[name]}", "clips": 0, "seconds": 0.0}
    if skipped is not None:
      skipped.write(json.dumps(record, sort_keys=True) + "\n")


@dataclasses.dataclass(frozen=True)
class ShardPath:
  """(split, shard index, number of shards) -> the file TFDS will read."""

  templates: dict

  def __call__(self, split: str, index: int, num_shards: int) -> str:
    return os.fspath(self.templates[split].sharded_filepath(shard_index=index,
                                                           num_shards=num_shards))


class ExampleSerializer:
  """An example dict -> the bytes of its tf.train.Example, as TFDS builds it,
  serialised with protobuf's deterministic flag: the feature map's order (so
  every shard's bytes) is then the same in every process."""

  def __init__(self, features):
    self.features = features
    self.serializer = example_serializer.ExampleSerializer(features.get_serialized_info())

  def __call__(self, example: dict) -> bytes:
    proto = self.serializer.get_tf_example(self.features.encode_example(example))
    return proto.SerializeToString(deterministic=True)


def code_digest() -> str:
  """A digest of the code that decides a shard's bytes (the pipeline and this
  builder): a build resumes only what the same code wrote."""
  import pipeline

  digest = hashlib.sha256()
  roots = [os.path.dirname(pipeline.__file__), os.path.dirname(__file__)]
  for root in roots:
    for name in sorted(n for n in os.listdir(root) if n.endswith(".py")):
      with open(os.path.join(root, name), "rb") as f:
        digest.update(name.encode() + f.read())
  return digest.hexdigest()[:16]


def _shard_outcomes(work: epath.Path) -> tuple[list[dict], dict[str, dict]]:
  """(what each shard holds: split, index, examples, bytes; the files whose
  shard found them otherwise than the analysis did), streamed from the
  outcome files: one line per shard, files not kept."""
  from pipeline.transforms import read_lines

  infos, deviations = [], {}
  for part in sorted(work.glob("shards-*")):
    for line in read_lines(os.fspath(part)):
      shard = json.loads(line)
      for o in shard.pop("files"):
        if "reason" in o or o["clips"] != o["expected"]:
          deviations[o["file"]] = dict(o, split=shard["split"])
      infos.append(shard)
  return infos, deviations


def _as_written(r: dict, deviations: dict[str, dict]) -> dict:
  """A planned record as the shard writers wrote it: the report describes
  the dataset on disk, even if a file changed after the analysis pass."""
  o = deviations.get(r["file"])
  if o is None:
    return r
  if "reason" in o:
    return dict(r, status="failed", reason=o["reason"], clips=0, split=None,
                detail=f"{o['detail']} (the file changed after the analysis pass)")
  return dict(r, clips=o["clips"], split=o["split"], detail="; ".join(filter(None, [
      r["detail"], f"{o['expected']} clips at analysis, {o['clips']} when encoded "
                   "(the file changed)"])))


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
