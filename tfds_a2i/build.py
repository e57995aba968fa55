"""Build the `a2i_speakers` TFDS dataset from a speaker corpus with Apache Beam.

    python -m pipeline.build --runner=DirectRunner                 # the built-in demo
    python -m pipeline.build --input ~/LibriSpeech/dev-clean --image_size 256

The command users type is `python -m pipeline.build`; its body lives here,
beside the dataset builder it runs (docs/architecture.md says why).

Flags this program does not know are Beam pipeline options (--runner,
--project, --setup_file, ...), checked before anything runs. On the
DirectRunner (the default) the build uses one worker process per core
unless --direct_num_workers is given (--direct_num_workers=1: one process).
Afterwards: `tfds.load('a2i_speakers/<name>')`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import math
import os
import re
import sys

from pipeline.audio import DEFAULT_MAX_SECONDS
from pipeline.console import CommandParser
from pipeline.corpus import LAYOUTS, is_url, stream_corpus
from pipeline.spec import BAND_LIMITS, DEFAULT_SPEC, IMAGE_SIZES


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
  """Every default shown, except the None of flags whose help says what happens."""

  def _get_help_string(self, action):
    if action.default is None or isinstance(action.default, bool):
      return action.help
    return super()._get_help_string(action)


BEAM_EPILOG = """\
Apache Beam pipeline options are accepted as well, in either of Beam's forms
(--flag=value or --flag value): --runner (DirectRunner, DataflowRunner,
FlinkRunner, SparkRunner, PortableRunner), --direct_num_workers,
--temp_location, --project, ... (docs/scaling.md). Without runner options
the build uses every core of this machine.
"""


def _parser() -> argparse.ArgumentParser:
  p = CommandParser(prog="python -m pipeline.build", description=__doc__.split("\n")[0],
              formatter_class=_Help, epilog=BEAM_EPILOG)
  p.add_argument("--input", help="corpus folder, bucket prefix or CSV/JSONL manifest "
                                 "(default: the built-in demo)")
  p.add_argument("--demo", choices=("demo", "voices20"),
                 help="built-in corpus, instead of --input: 'demo' (2 voices, the paper's "
                      "size; the default without --input) or 'voices20' (20 degraded voices)")
  p.add_argument("--layout", default="auto", choices=("auto",) + tuple(LAYOUTS),
                 help="how the corpus names speakers and recordings")
  p.add_argument("--name", help="config name (default: from the input folder, plus _<size> "
                                "below 512 px; 'demo')")
  p.add_argument("--data_dir", help="TFDS data dir (default: $TFDS_DATA_DIR or "
                                    "~/tensorflow_datasets)")
  p.add_argument("--image_size", type=int, default=512, choices=IMAGE_SIZES,
                 help="side of each RGB image in pixels")
  p.add_argument("--split_by", default="recording", choices=("recording", "speaker"),
                 help="what a split keeps together: 'speaker' for unseen-speaker tests")
  p.add_argument("--splits", default="80/10/10", help="train/validation/test percentages")
  p.add_argument("--splits_file", help="official splits instead: VoxCeleb's iden_split.txt "
                                       "(1|2|3 path) or a CSV with path,split columns; the "
                                       "dataset's splits are exactly its lines")
  p.add_argument("--clip_seconds", type=float, default=DEFAULT_SPEC.clip_seconds,
                 help="length of the clip one image holds")
  p.add_argument("--min_speech_seconds", type=float, default=DEFAULT_SPEC.min_speech_seconds,
                 help="active audio a clip needs to be kept")
  p.add_argument("--band_limit", default=DEFAULT_SPEC.band_limit, choices=BAND_LIMITS,
                 help="the band spectral descriptors are measured over: the working rate's "
                      "(0-8 kHz) or, for a file sampled lower, its own (docs/encoding.md)")
  p.add_argument("--max_seconds", type=float, default=DEFAULT_MAX_SECONDS,
                 help="per-file duration cap; longer files are refused")
  p.add_argument("--overwrite", action="store_true",
                 help="rebuild an existing version (the old one stays until the new is complete)")
  p.add_argument("--file_format", default="tfrecord", choices=("tfrecord", "array_record"),
                 help="shard format: TFRecord (tfds.load, tf.data) or ArrayRecord (random "
                      "access: tfds.data_source, no TensorFlow needed to read it)")
  p.add_argument("--wait", action="store_true",
                 help="if another build of the same dataset is running, wait for it to end "
                      "(default: refuse at once, naming it)")
  return p


def _config_name(args) -> str:
  if args.name:
    name = args.name
  elif args.input:
    base = os.path.basename(os.path.normpath(args.input))
    name = os.path.splitext(base)[0] if os.path.isfile(args.input) else base
  else:
    name = args.demo
  name = re.sub(r"[^a-z0-9_.-]+", "_", name.lower()).strip("_.-") or "corpus"
  if not args.name and args.image_size != 512:
    name += f"_{args.image_size}"
  return name


def _missing_input(path: str) -> str | None:
  """Why --input cannot be read, or None: a local path, or a bucket/HDFS
  prefix with at least one object under it."""
  if not is_url(path):
    return None if os.path.exists(path) else "no such file or directory"
  from apache_beam.io.filesystems import FileSystems

  try:
    found = FileSystems.match([path.rstrip("/") + "/**"], limits=[1])[0].metadata_list
  except Exception as e:  # BeamIOError, or the scheme's extra (apache-beam[gcp]...) missing
    return "cannot be listed: " + str(e).splitlines()[0][:200]
  return None if found else "no object under this prefix"


class _QuietBeamImport(logging.Filter):
  """Beam warns on import that Google Cloud's client is missing, which only
  matters for Dataflow/BigQuery users, who install apache-beam[gcp]."""

  def filter(self, record):
    return not str(record.msg).startswith("apitools not found")


def _check_beam_options(parser, beam_args: list[str]) -> list[str]:
  """Refuses what no Beam options class declares, in either of Beam's forms
  (`--project=P` or `--project P`), and values of the wrong type, with one
  line each; returns the arguments, completed with the local default for
  parallelism."""
  from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

  logging.getLogger("apache_beam.options.pipeline_options").setLevel(logging.ERROR)
  options = PipelineOptions(beam_args)
  usage = io.StringIO()
  try:
    with contextlib.redirect_stderr(usage):   # Beam's parser prints its whole usage first
      known = options.get_all_options()
      unknown = sorted(set(options.get_all_options(retain_unknown_options=True)) - set(known))
  except SystemExit:
    parser.error(usage.getvalue().strip().splitlines()[-1].split("error: ", 1)[-1])
  if unknown:
    shown, taking = [], False
    for a in beam_args:                 # each unknown flag with the value that follows it
      if a.startswith("--"):
        taking = a[2:].split("=")[0] in unknown
      if taking:
        shown.append(a)
    parser.error(f"unrecognized arguments: {' '.join(shown)}")
  runner = options.view_as(StandardOptions).runner
  if runner:
    from apache_beam.runners.runner import create_runner

    try:
      create_runner(runner)
    except ValueError as e:
      parser.error(f"--runner={runner}: {str(e).splitlines()[0]}")
    except ImportError as e:  # a known runner whose extra is not installed
      parser.error(f"--runner={runner} needs a package that is not installed: {e}")
  return beam_args + _local_parallelism(runner, beam_args)


def _local_parallelism(runner: str | None, beam_args: list[str]) -> list[str]:
  """On the DirectRunner with no parallelism flag, one worker process per
  core: the shards are independent tasks, so throughput scales with cores.
  Worker processes log at WARNING unless told otherwise: their start-up
  INFO lines say nothing a user can act on."""
  runner = (runner or "DirectRunner").split(".")[-1]
  flags = {a.split("=")[0] for a in beam_args}
  if runner not in ("DirectRunner", "BundleBasedDirectRunner"):
    return []
  quiet = ([] if "--default_sdk_harness_log_level" in flags
           else ["--default_sdk_harness_log_level=WARNING"])
  cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  if flags & {"--direct_num_workers", "--direct_running_mode"} or (cores or 1) < 2:
    return quiet
  return [f"--direct_num_workers={cores}", "--direct_running_mode=multi_processing"] + quiet


def run(argv=None) -> int:
  parser = _parser()
  args, beam_args = parser.parse_known_args(argv)
  if args.input and args.demo:
    parser.error("--demo and --input exclude each other: --demo builds a built-in corpus")
  args.demo = args.demo or (None if args.input else "demo")
  if args.input and _missing_input(args.input):
    parser.error(f"--input {args.input}: {_missing_input(args.input)}")
  for flag in ("clip_seconds", "min_speech_seconds", "max_seconds"):
    value = getattr(args, flag)
    if not math.isfinite(value) or value <= 0:
      parser.error(f"--{flag} must be a positive number of seconds, got {value:g}")
  from pipeline import splits

  try:
    fractions = splits.parse_fractions(args.splits)
  except ValueError as e:
    parser.error(str(e))
  if args.splits_file:
    if not args.input:
      parser.error("--splits_file needs --input: it lists files of a corpus")
    if args.split_by != "recording":
      parser.error("--splits_file and --split_by exclude each other: the file decides the splits")
    try:
      args.splits_file = os.path.abspath(args.splits_file)
      splits.read_splits_file(args.splits_file)
    except OSError as e:
      parser.error(f"--splits_file {args.splits_file}: {e.strerror or e}")
    except ValueError as e:
      parser.error(f"--splits_file {e}")
  from pipeline.orphans import Guard

  with Guard():   # before Beam is imported: workers never outlive a killed build
    return _build(parser, args, _check_beam_options(parser, beam_args), fractions)


def _dataset_config(parser, args, fractions, name: str):
  """The builder config the flags describe: a user corpus (listed here, so
  the speakers are known), a built-in one, or "demo" itself at its defaults."""
  import dataclasses

  from pipeline import demo
  from tfds_a2i.a2i_speakers.a2i_speakers_dataset_builder import A2iSpeakersConfig, Builder

  spec = dataclasses.replace(DEFAULT_SPEC, clip_seconds=args.clip_seconds,
                             min_speech_seconds=args.min_speech_seconds,
                             band_limit=args.band_limit)
  settings = dict(image_size=args.image_size, split_by=args.split_by, fractions=fractions,
                  max_seconds=args.max_seconds, spec=spec.to_json())
  if args.input:
    root = args.input if is_url(args.input) else os.path.abspath(args.input)
    speakers, listed = set(), 0
    try:
      layout, files = stream_corpus(root, args.layout)
      for f in files:        # one file at a time: only the speakers are kept
        listed += 1
        if f.status == "audio":
          speakers.add(f.speaker)
    except (ValueError, OSError) as e:
      parser.error(str(e))
    speakers = tuple(sorted(speakers))
    if not speakers:
      parser.error(f"--input {args.input}: no audio file in a speaker folder "
                   f"({listed} files, layout {layout})")
    return A2iSpeakersConfig(name=name, input=root, layout=layout, speakers=speakers,
                             splits_file=args.splits_file,
                             description=f"Built from {root} ({layout} layout"
                                         + (f", splits from {args.splits_file}"
                                            if args.splits_file else "") + ").", **settings)
  default = Builder.builder_configs["demo"]
  if (name == "demo" and args.demo == "demo"
      and all(getattr(default, k) == v for k, v in settings.items())):
    return "demo"
  corpus = demo.CORPORA[args.demo]
  return dataclasses.replace(
      default, name=name, demo=args.demo, **settings,
      speakers=tuple(v.speaker for v in corpus.voices),
      description=f"The built-in {args.demo} corpus ({len(corpus.voices)} eSpeak NG voices"
                  f"{', degraded' if corpus.degrade else ''}) at {args.image_size}x"
                  f"{args.image_size}, split {args.splits} by {args.split_by}.")


def _build(parser, args, beam_args: list[str], fractions) -> int:
  """The build, holding the config's lock (tfds_a2i/build_lock.py) from
  before the corpus is listed until the version is published or abandoned."""
  from absl import logging as absl_logging

  from tfds_a2i.build_lock import BuildLock, LockHeld

  absl_logging.set_verbosity(absl_logging.ERROR)  # TFDS prints whole configs as warnings
  logging.getLogger("apache_beam").setLevel(logging.ERROR)  # workers' start-up notes, relayed
  name = _config_name(args)
  data_dir = args.data_dir or os.environ.get("TFDS_DATA_DIR") or None
  where = data_dir or os.path.expanduser("~/tensorflow_datasets")
  try:
    with BuildLock(f"{where.rstrip('/')}/a2i_speakers/{name}", wait=args.wait) as lock:
      if lock.took_over:
        print("took over the lock of a build that no longer runs "
              f"({lock.describe(lock.took_over)})")
      return _build_locked(parser, args, beam_args, fractions, name, data_dir)
  except LockHeld as e:
    print(f"error: a2i_speakers/{name}: {e}", file=sys.stderr)
    return 1


def _build_locked(parser, args, beam_args, fractions, name: str, data_dir) -> int:
  import tensorflow_datasets as tfds
  from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
  from etils import epath

  from pipeline.console import WORKER_NOISE, filtered_stderr
  from pipeline.report import BuildError, format_summary
  from tfds_a2i.a2i_speakers.a2i_speakers_dataset_builder import REPORT_FILE, Builder

  config = _dataset_config(parser, args, fractions, name)
  if name == "demo" and config != "demo":
    parser.error("the name 'demo' is the built-in corpus at its default settings; pick --name")
  builder = Builder(config=config, data_dir=data_dir, file_format=args.file_format)
  version_dir = epath.Path(builder.data_dir)
  _finish_interrupted_swap(version_dir)
  if (version_dir / REPORT_FILE).exists() and not args.overwrite:
    print(f"a2i_speakers/{builder.builder_config.name} {builder.version} already built at "
          f"{builder.data_dir} (--overwrite to rebuild)")
    return 0
  _remove_unfinished(version_dir, builder.version, resume=not args.overwrite)
  # A rebuild is made beside the version it replaces, which stays complete and
  # loadable until the new one is: a rebuild killed at any point loses nothing.
  staging = None
  if (version_dir / REPORT_FILE).exists():
    staging = version_dir.parent / f"{_STAGING}{builder.version}"
    builder = Builder(config=config, data_dir=os.fspath(staging), file_format=args.file_format)
  options = PipelineOptions(beam_args)
  workers = options.view_as(DirectOptions).direct_num_workers
  if (options.view_as(StandardOptions).runner or "DirectRunner") == "DirectRunner" and workers != 1:
    print(f"DirectRunner: {workers or 'one per core'} worker processes "
          "(--direct_num_workers=1 for one)")
  try:
    with filtered_stderr(WORKER_NOISE):
      builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
          beam_options=options))
  except BuildError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  if staging is not None:
    _swap_in(epath.Path(builder.data_dir), version_dir)
    staging.rmtree()
  print(format_summary(builder.report_summary, os.fspath(version_dir)))
  where = f" --data_dir {args.data_dir}" if args.data_dir else ""
  print(f"  report   {os.fspath(version_dir / REPORT_FILE)}\n"
        f"  next     python -m trainer.fit --dataset a2i_speakers/{name}{where}")
  return 0


def _remove_unfinished(version_dir, version, resume: bool) -> None:
  """A build killed earlier leaves TFDS's temporary folder beside the version
  folder (or our staging folder, for a rebuild); readers ignore both. One
  that recorded its state is left for the builder to resume from (unless
  `resume` is off: --overwrite starts over); the rest are removed."""
  from tfds_a2i.a2i_speakers.a2i_speakers_dataset_builder import RESUME_STATE

  stale = [folder for folder in version_dir.parent.glob(f"incomplete.*_{version}")
           if not (resume and (folder / RESUME_STATE).exists())]
  stale += list(version_dir.parent.glob(f"{_STAGING}*"))
  for folder in stale:
    folder.rmtree()
  if stale:
    print(f"removed {len(stale)} unfinished build folder(s) left by an interrupted run")


_STAGING = ".rebuild-"


def _swap_in(new, version_dir) -> None:
  """Puts a complete rebuild in place of the version it replaces: two renames,
  the old one kept aside until the new one is in."""
  old = version_dir.parent / f"{version_dir.name}.replaced"
  version_dir.rename(old)
  new.rename(version_dir)
  old.rmtree()


def _finish_interrupted_swap(version_dir) -> None:
  """A run killed between the two renames of `_swap_in` left the old version
  aside and a complete new one in staging: finish the swap (or, with no
  complete new one, put the old one back)."""
  old = version_dir.parent / f"{version_dir.name}.replaced"
  if not old.exists():
    return
  if version_dir.exists():
    old.rmtree()
    return
  new = version_dir.parent / f"{_STAGING}{version_dir.name}" / "a2i_speakers" / \
      version_dir.parent.name / version_dir.name
  (new if (new / "dataset_info.json").exists() else old).rename(version_dir)
  if old.exists():
    old.rmtree()


def main(argv=None) -> int:
  # The command's process settings, here and not at import: TensorFlow's
  # start-up chatter off, one line per log record, Beam's import warning
  # about Google Cloud's client dropped.
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  logging.basicConfig(format="%(levelname)s:%(name)s:%(message)s")
  logging.getLogger().addFilter(_QuietBeamImport())
  try:
    return run(argv)
  except KeyboardInterrupt:
    print("interrupted: nothing was published (the temporary folder is removed); run the same "
          "command again to build", file=sys.stderr)
    return 130


if __name__ == "__main__":
  sys.exit(main())
