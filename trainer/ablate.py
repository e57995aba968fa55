"""Which planes carry the speaker? Channel ablation against non-image baselines.

    python -m trainer.ablate --dataset a2i_speakers/demo_128 --output runs/ablation --seeds 3

Same splits, same model (--model) and protocol for every row; seeds change
the initialisation and the order of batches. Rows: R, G, B, RGB (the CNN on
those planes), descriptors_logreg (logistic regression on the dataset's
`descriptors`: the red plane's numbers before quantisation), egemaps_logreg
(the same regression on openSMILE's eGeMAPS v02 functionals of each clip's
audio: what a speech scientist would use) and logmel_cnn (an x-vector-style
TDNN on a 64-band log-mel spectrogram of each clip's audio: the speech
field's usual network). Writes
ablation.json (one row per name, each with accuracy_mean and accuracy_std),
ablation.md and ablation.png, after every row; run again with the same
settings and --output, a stopped study keeps its finished rows and resumes.
"""

from __future__ import annotations

import argparse
import os
import sys

ROWS = ("R", "G", "B", "RGB", "descriptors_logreg", "egemaps_logreg", "logmel_cnn")


def _parser():
  from trainer import study

  p = argparse.ArgumentParser(prog="python -m trainer.ablate", description=__doc__.split("\n")[0])
  p.add_argument("--dataset", default="a2i_speakers")
  p.add_argument("--data_dir")
  p.add_argument("--output", default="runs/ablation")
  p.add_argument("--seeds", type=int, default=3)
  study.add_training_flags(p, skip=("output", "seed", "channels", "dataset", "data_dir"))
  p.add_argument("--rows", default=",".join(ROWS), help="comma-separated subset of the rows")
  return p


def _finished_rows(output: str, protocol: dict, rows) -> dict:
  """Rows a stopped run of the same study (same dataset version and
  fingerprint, settings and seeds) already wrote to `output`: kept, so the
  study resumes where it stopped."""
  import json

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


def main(argv=None) -> int:
  parser = _parser()
  args = parser.parse_args(argv)
  rows = args.rows.split(",")
  if set(rows) - set(ROWS) or args.seeds < 1:
    parser.error(f"--rows from {','.join(ROWS)}; --seeds positive")
  from trainer import study

  base = study.checked_config(parser, args)

  builder, data_dir = study.open_dataset_or_exit(args.dataset, args.data_dir)
  os.makedirs(args.output, exist_ok=True)
  results, notes = {}, {}
  protocol = {"dataset": study.identity(builder), "config": base.__dict__,
              "model": args.model, "epochs": args.epochs or "sized from the dataset",
              "seeds": args.seeds, "notes": notes,
              "test_examples": builder.info.splits["test"].num_examples,
              "speakers": builder.info.features["speaker"].num_classes}
  results.update(_finished_rows(args.output, protocol, rows))
  for row in rows:
    if row in results:
      print(f"{row}: kept from {os.path.join(args.output, 'ablation.json')}", flush=True)
      continue
    accuracies = []
    for seed in range(args.seeds):
      config = study.config_of(args, seed=seed, data_dir=data_dir,
                               channels=row.lower() if row in ("R", "G", "B", "RGB") else "rgb")
      if row in ("R", "G", "B", "RGB"):
        acc = study.image_cnn_accuracy(config)
      elif row == "descriptors_logreg":
        acc = study.descriptor_logreg_accuracy(builder, seed)
      elif row == "egemaps_logreg":
        acc, notes[row] = study.egemaps_logreg_accuracy(builder, data_dir, seed)
      else:
        acc, notes[row] = study.logmel_cnn_accuracy(builder, data_dir, config)
      accuracies.append(acc)
      print(f"{row} seed {seed}: test accuracy {acc:.4f}", flush=True)
    results[row] = study.summary(accuracies)
    # Written after every row: a long study stopped part-way keeps its finished rows.
    study.write_table(args.output, "ablation", {r: results[r] for r in rows if r in results},
                      protocol,
                      title=f"Channel ablation and baselines on {args.dataset}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
