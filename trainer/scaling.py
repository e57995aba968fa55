"""Does accuracy hold as speakers are added? Accuracy against the number of speakers.

    python -m trainer.scaling --dataset a2i_speakers/voices20_128 --output runs/scaling

For each count (--counts, 'all' for every speaker) and each seed, a random
subset of that many speakers (a new draw per seed), the same splits
restricted to them, the same model and protocol as trainer.ablate; the
descriptor logistic regression on the same subsets for comparison. Writes
scaling.json (rows keyed by count), scaling_protocol.json, scaling.md and
scaling.png.
"""

from __future__ import annotations

import sys

from pipeline.console import CommandParser
from trainer.config import TrainConfig


def _figure(cnn: dict, logreg: dict):
  from trainer.results import pyplot

  plt = pyplot()
  fig, ax = plt.subplots(figsize=(5, 3.5))
  ks = [int(k) for k in cnn]
  for label, rows in (("image CNN", cnn), ("descriptors + logreg", logreg)):
    ax.errorbar(ks, [rows[str(k)]["accuracy_mean"] for k in ks],
                yerr=[rows[str(k)]["accuracy_std"] for k in ks], marker="o", capsize=3,
                label=label)
  ax.plot(ks, [1 / k for k in ks], "k:", label="chance")
  ax.set_xscale("log")
  ax.set_xticks(ks, [str(k) for k in ks])
  ax.set_xticks([], minor=True)     # a log axis labels its minor ticks otherwise
  ax.set_xlabel("speakers")
  ax.set_ylabel("test accuracy")
  ax.set_ylim(0, 1.05)
  ax.legend(fontsize=8)
  fig.tight_layout()
  return fig


def main(argv=None) -> int:
  p = CommandParser(prog="python -m trainer.scaling", description=__doc__.split("\n")[0])
  p.add_argument("--dataset", default="a2i_speakers/voices20")
  p.add_argument("--data_dir")
  p.add_argument("--output", default="runs/scaling")
  p.add_argument("--counts", default="2,5,10,all")
  p.add_argument("--seeds", type=int, default=3)
  TrainConfig.add_flags(p, skip=("output", "seed", "dataset", "data_dir"))
  args = p.parse_args(argv)
  base = TrainConfig.for_study(args, p)
  import numpy as np

  from trainer import quiet

  quiet.start_tensorflow()
  from trainer import baselines, data, report, results
  from trainer.train import train

  dataset, data_dir = data.open_or_exit(args.dataset, args.data_dir)
  n_all = len(dataset.speakers)
  try:
    counts = sorted({n_all if c == "all" else int(c) for c in args.counts.split(",")})
  except ValueError:
    p.error("--counts takes numbers and 'all', e.g. 2,5,10,all")
  if not counts or counts[0] < 2 or counts[-1] > n_all:
    p.error(f"--counts must lie in 2..{n_all} (the dataset has {n_all} speakers)")
  cnn, logreg = {}, {}
  for k in counts:
    accuracies, baseline, subsets = [], [], []
    for seed in range(args.seeds):
      subset = sorted(np.random.default_rng(seed).permutation(n_all)[:k].tolist())
      subsets.append(subset)
      result = train(TrainConfig.for_study(args, seed=seed, data_dir=data_dir),
                     speakers=None if k == n_all else subset, verbose=0)
      accuracies.append(report.accuracy(result.model, result.splits.test))
      baseline.append(baselines.descriptor_logreg_accuracy(dataset, seed, subset))
      print(f"{k} speakers, seed {seed}: CNN {accuracies[-1]:.4f}, descriptors "
            f"{baseline[-1]:.4f}", flush=True)
    cnn[str(k)] = {**results.summary(accuracies), "chance": 1.0 / k, "speakers": subsets}
    logreg[str(k)] = results.summary(baseline)
  protocol = {"dataset": report.dataset_identity(dataset.builder), "config": base.__dict__,
              "model": args.model, "channels": args.channels,
              "epochs": args.epochs or "sized from the dataset", "seeds": args.seeds,
              "speakers": n_all, "test_examples": dataset.info.splits["test"].num_examples,
              "descriptors_logreg": logreg}
  title = f"Accuracy vs number of speakers on {args.dataset} ({args.channels})"
  markdown = results.accuracy_table(title, cnn, protocol) + (
      "\n\n| speakers | image CNN | descriptors + logistic regression | chance |\n"
      "|---|---|---|---|\n" + "".join(
          f"| {k} | {cnn[k]['accuracy_mean']:.3f} +- {cnn[k]['accuracy_std']:.3f} "
          f"| {logreg[k]['accuracy_mean']:.3f} +- {logreg[k]['accuracy_std']:.3f} "
          f"| {1 / int(k):.3f} |\n" for k in cnn))
  results.write(args.output, "scaling", cnn, markdown, _figure(cnn, logreg), protocol=protocol)
  return 0


if __name__ == "__main__":
  sys.exit(main())
