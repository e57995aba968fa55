"""Train and evaluate the speaker CNN on a2i_speakers.

    python -m trainer.fit                                  # the default dataset
    python -m trainer.fit --dataset a2i_speakers/mycorpus_128 --channels rg
    python -m trainer.fit --config runs/a2i_speakers/config.json --output runs/again

The run folder (default runs/<dataset>) gets config.json (every setting,
the dataset's version and fingerprint, package versions: `--config` replays
the run from it), encoding.json (what predict needs), model.keras (best on
validation), metrics.json, figures and TensorBoard logs. A killed run started
again with the same folder resumes from its last finished epoch; a folder
holding another dataset's or model's run is refused.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from pipeline.console import CommandParser
from trainer.config import CONFIG_FILE, TrainConfig

# How the summary line names each back end (trainer.heads), and beside it.
BACKEND_NAMES = {"softmax": "the network's softmax", "lda": "LDA",
                 "average": "the average of the softmax's and LDA's log-posteriors"}
SHORT_NAMES = {"softmax": "softmax", "lda": "LDA", "average": "average"}
# Settings that make a run folder another run: reusing it would mix histories
# or restore a backup of another network.
_SAME_RUN = ("dataset", "data_dir", "model", "channels", "pooling", "batch_size", "epochs",
             "seed")


def _parser():
  p = CommandParser(prog="python -m trainer.fit", description=__doc__.split("\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog="\n".join(__doc__.split("\n")[2:5]))
  p.add_argument("--config", help="config.json of an earlier run: train it again "
                                  "(with --output, into another folder)")
  TrainConfig.add_flags(p)
  return p


def _refuse_other_run(parser, folder: str, config: TrainConfig) -> None:
  path = os.path.join(folder, CONFIG_FILE)
  if not os.path.exists(path):
    if os.path.exists(os.path.join(folder, "history.csv")):
      parser.error(f"--output {folder} holds a run without {CONFIG_FILE}; choose another folder")
    return
  try:
    previous = TrainConfig.load(path)
  except (ValueError, TypeError, json.JSONDecodeError) as e:
    parser.error(f"--output {folder}: unreadable {CONFIG_FILE} ({e}); choose another folder")
  differ = [k for k in _SAME_RUN if getattr(previous, k) != getattr(config, k)]
  if differ:
    parser.error(f"--output {folder} holds another run ({', '.join(f'{k}={getattr(previous, k)}' for k in differ)}); "
                 "choose another folder, or delete it to start over")


def check_lines(metrics: dict) -> list[str]:
  """The summary's lines on the test recordings that the build report's
  checks name (metrics.json's `test_by_sample_rate`, `test_by_pitch`),
  where there are any, and on those either names where both do."""
  from trainer.report import EITHER, FLAGS

  what = {"rare_rate": "at a sample rate rare for their speaker",
          "unlike_pitch": "at a pitch unlike their speaker's training recordings",
          "rare_rate or unlike_pitch": "named by either check"}
  lines = []
  for column, key, name in FLAGS + (("rare_rate or unlike_pitch", *EITHER),):
    scores = metrics.get(key)
    if not scores or not scores[name]["clips"] or (key == EITHER[0] and len(lines) < 2):
      continue
    named, rest = scores[name], scores["the_rest"]
    wrong = named["clips"] - named["right"] + rest["clips"] - rest["right"]
    rest_accuracy = f"{rest['accuracy']:.4f}" if rest["clips"] else "-"
    lines.append(f"  {what[column]} (build_report.json: checks): "
                 f"{named['recordings']} test recording{'s' * (named['recordings'] != 1)}, "
                 f"{named['clips'] - named['right']} of the {wrong} clips wrong; accuracy on the "
                 f"other {rest['clips']} clips {rest_accuracy} (test_predictions.csv: {column})")
  return lines


def main(argv=None) -> int:
  parser = _parser()
  args = parser.parse_args(argv)
  try:
    if args.config:
      config = TrainConfig.load(args.config)
      if args.output:
        config = TrainConfig(**{**config.__dict__, "output": args.output})
    else:
      config = TrainConfig.from_args(args)
  except (ValueError, OSError, json.JSONDecodeError) as e:
    parser.error(str(e))
  folder = config.run_folder
  _refuse_other_run(parser, folder, config)

  from trainer import quiet

  quiet.start_tensorflow()
  from trainer import data, report
  from trainer.train import train

  dataset, _ = data.open_or_exit(config.dataset, config.data_dir)
  os.makedirs(folder, exist_ok=True)
  config.save(folder, dataset=report.dataset_identity(dataset.builder))
  report.write_encoding(folder, dataset, config)   # predict works from the first checkpoint
  result = train(config, folder=folder)
  # EarlyStopping restored the best weights, or training ran out its epochs:
  # either way save what is evaluated, so model.keras is the reported model.
  result.model.save(os.path.join(folder, "model.keras"))
  metrics = report.write(result, config, folder)
  b = metrics["backend"]
  others = ", ".join(f"{short} {b[f'test_accuracy_{name}']:.4f}"
                     for name, short in SHORT_NAMES.items()
                     if f"test_accuracy_{name}" in b and name != b.get("chosen"))
  if b.get("chosen"):
    backend = f" ({BACKEND_NAMES[b['chosen']]}, chosen on validation; {others})"
  else:
    backend = f" ({BACKEND_NAMES[b['name']]}; {others})" if others else ""
  print(f"test accuracy {metrics['test_accuracy']:.4f}{backend} on "
        f"{metrics['test_examples']} clips, {len(result.splits.speakers)} speakers, "
        f"{metrics['epochs_run']} epochs in {result.seconds / 60:.1f} min -> {folder}")
  for line in check_lines(metrics):
    print(line)
  return 0


if __name__ == "__main__":
  sys.exit(main())
