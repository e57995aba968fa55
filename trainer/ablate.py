"""Which planes carry the speaker? Channel ablation against non-image baselines.

    python -m trainer.ablate --dataset a2i_speakers/demo_128 --output runs/ablation --seeds 3

Same splits, same model (--model) and protocol for every row; seeds change
the initialisation and the order of batches. Rows: R, G, B, RGB (the
network on those planes) and the baselines of trainer.baselines:
descriptors_logreg, egemaps_logreg and logmel_cnn (the log-mel TDNN,
trained by the same protocol and scored with the same back end). Writes
ablation.json (one row per name, each with accuracy_mean and accuracy_std),
ablation_protocol.json, ablation.md and ablation.png, after every row; run
again with the same settings and --output, a stopped study keeps its
finished rows and resumes.
"""

from __future__ import annotations

import json
import os
import sys

from pipeline.console import CommandParser
from trainer.config import TrainConfig

IMAGE_ROWS = ("R", "G", "B", "RGB")
ROWS = IMAGE_ROWS + ("descriptors_logreg", "egemaps_logreg", "logmel_cnn")


def _parser():
  p = CommandParser(prog="python -m trainer.ablate", description=__doc__.split("\n")[0])
  p.add_argument("--dataset", default="a2i_speakers")
  p.add_argument("--data_dir")
  p.add_argument("--output", default="runs/ablation")
  p.add_argument("--seeds", type=int, default=3)
  TrainConfig.add_flags(p, skip=("output", "seed", "channels", "dataset", "data_dir"))
  p.add_argument("--rows", default=",".join(ROWS), help="comma-separated subset of the rows")
  return p


def _finished_rows(output: str, protocol: dict, rows) -> dict:
  """Rows a stopped run of the same study (same dataset version and
  fingerprint, settings and seeds) already wrote to `output`: kept, so the
  study resumes where it stopped."""
  try:
    with open(os.path.join(output, "ablation_protocol.json")) as f:
      previous = json.load(f)
    with open(os.path.join(output, "ablation.json")) as f:
      finished = json.load(f)
  except (OSError, ValueError):
    return {}
  same = {k: v for k, v in previous.items() if k != "notes"} == json.loads(json.dumps(
      {k: v for k, v in protocol.items() if k != "notes"}))
  if not same:
    return {}
  protocol["notes"].update(previous.get("notes", {}))
  return {row: finished[row] for row in rows if row in finished}


def row_accuracy(row: str, config: TrainConfig, dataset, data_dir) -> tuple[float, str | None]:
  """(test accuracy, note or None) of one row for one seed (`config.seed`)."""
  from trainer import baselines, report
  from trainer.train import train

  if row in IMAGE_ROWS:
    result = train(config, verbose=0)
    return report.accuracy(result.model, result.splits.test), None
  if row == "descriptors_logreg":
    return baselines.descriptor_logreg_accuracy(dataset, config.seed), None
  if row == "egemaps_logreg":
    return baselines.egemaps_logreg_accuracy(dataset, data_dir, config.seed)
  return baselines.logmel_accuracy(dataset, data_dir, config)


def main(argv=None) -> int:
  parser = _parser()
  args = parser.parse_args(argv)
  rows = args.rows.split(",")
  if set(rows) - set(ROWS) or args.seeds < 1:
    parser.error(f"--rows from {','.join(ROWS)}; --seeds positive")
  base = TrainConfig.for_study(args, parser)
  from trainer import quiet

  quiet.start_tensorflow()
  from trainer import data, results
  from trainer.report import dataset_identity

  dataset, data_dir = data.open_or_exit(args.dataset, args.data_dir)
  scores, notes = {}, {}
  protocol = {"dataset": dataset_identity(dataset.builder), "config": base.__dict__,
              "model": args.model, "epochs": args.epochs or "sized from the dataset",
              "seeds": args.seeds, "notes": notes,
              "test_examples": dataset.info.splits["test"].num_examples,
              "speakers": len(dataset.speakers)}
  scores.update(_finished_rows(args.output, protocol, rows))
  title = f"Channel ablation and baselines on {args.dataset}"
  for row in rows:
    if row in scores:
      print(f"{row}: kept from {os.path.join(args.output, 'ablation.json')}", flush=True)
      continue
    accuracies = []
    for seed in range(args.seeds):
      config = TrainConfig.for_study(args, seed=seed, data_dir=data_dir,
                                     channels=row.lower() if row in IMAGE_ROWS else "rgb")
      accuracy, note = row_accuracy(row, config, dataset, data_dir)
      if note:
        notes[row] = note
      accuracies.append(accuracy)
      print(f"{row} seed {seed}: test accuracy {accuracy:.4f}", flush=True)
    scores[row] = results.summary(accuracies)
    # Written after every row: a long study stopped part-way keeps its finished rows.
    done = {r: scores[r] for r in rows if r in scores}
    results.write(args.output, "ablation", done, results.accuracy_table(title, done, protocol),
                  results.accuracy_bars(done, title), protocol=protocol)
  return 0


if __name__ == "__main__":
  sys.exit(main())
