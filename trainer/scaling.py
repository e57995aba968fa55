"""Does accuracy hold as speakers are added? Accuracy against the number of speakers.

    python -m trainer.scaling --dataset a2i_speakers/voices20_128 --output runs/scaling

For each count (--counts, 'all' for every speaker) and each seed, a random
subset of that many speakers (a new draw per seed), the same splits
restricted to them, the same model and protocol as trainer.ablate; the
descriptor logistic regression on the same subsets for comparison. Writes
scaling.json (rows keyed by count), scaling.md and scaling.png.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv=None) -> int:
  from trainer import study

  p = argparse.ArgumentParser(prog="python -m trainer.scaling", description=__doc__.split("\n")[0])
  p.add_argument("--dataset", default="a2i_speakers/voices20")
  p.add_argument("--data_dir")
  p.add_argument("--output", default="runs/scaling")
  p.add_argument("--counts", default="2,5,10,all")
  p.add_argument("--seeds", type=int, default=3)
  study.add_training_flags(p)
  args = p.parse_args(argv)
  base = study.checked_config(p, args)
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  import numpy as np

  builder, data_dir = study.open_dataset_or_exit(args.dataset, args.data_dir)
  n_all = builder.info.features["speaker"].num_classes
  try:
    counts = sorted({n_all if c == "all" else int(c) for c in args.counts.split(",")})
  except ValueError:
    p.error("--counts takes numbers and 'all', e.g. 2,5,10,all")
  if not counts or counts[0] < 2 or counts[-1] > n_all:
    p.error(f"--counts must lie in 2..{n_all} (the dataset has {n_all} speakers)")
  os.makedirs(args.output, exist_ok=True)
  results, baseline = {}, {}
  for k in counts:
    cnn, logreg, subsets = [], [], []
    for seed in range(args.seeds):
      subset = sorted(np.random.default_rng(seed).permutation(n_all)[:k].tolist())
      subsets.append(subset)
      cnn.append(study.image_cnn_accuracy(study.config_of(args, seed=seed, data_dir=data_dir),
                                          speakers=None if k == n_all else subset))
      logreg.append(study.descriptor_logreg_accuracy(builder, seed, subset))
      print(f"{k} speakers, seed {seed}: CNN {cnn[-1]:.4f}, descriptors {logreg[-1]:.4f}",
            flush=True)
    results[str(k)] = {**study.summary(cnn), "chance": 1.0 / k, "speakers": subsets}
    baseline[str(k)] = study.summary(logreg)
  protocol = {"dataset": study.identity(builder), "config": base.__dict__,
              "model": args.model, "channels": args.channels,
              "epochs": args.epochs or "sized from the dataset", "seeds": args.seeds,
              "speakers": n_all, "test_examples": builder.info.splits["test"].num_examples,
              "descriptors_logreg": baseline}
  study.write_table(args.output, "scaling", results, protocol,
                    title=f"Accuracy vs number of speakers on {args.dataset} ({args.channels})")
  with open(os.path.join(args.output, "scaling.md"), "a") as f:
    f.write("\n| speakers | image CNN | descriptors + logistic regression | chance |\n"
            "|---|---|---|---|\n")
    for k in results:
      f.write(f"| {k} | {results[k]['accuracy_mean']:.3f} +- {results[k]['accuracy_std']:.3f} "
              f"| {baseline[k]['accuracy_mean']:.3f} +- {baseline[k]['accuracy_std']:.3f} "
              f"| {1 / int(k):.3f} |\n")
  fig, ax = plt.subplots(figsize=(5, 3.5))
  ks = [int(k) for k in results]
  for label, rows in (("image CNN", results), ("descriptors + logreg", baseline)):
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
  fig.savefig(os.path.join(args.output, "scaling.png"), dpi=100)
  plt.close(fig)
  return 0


if __name__ == "__main__":
  sys.exit(main())
