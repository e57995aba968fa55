"""The two back ends of `cells` and their average, on the same trained runs.

    python benchmarks/backend_fusion.py --data_dir D [--voices20_data_dir D2] --seeds 3

Per dataset and seed, one `cells` training with the defaults
(trainer.train.train, as `trainer.fit` trains), then on the validation and
test splits the clips right by the network's own softmax, by LDA on its
embedding (trainer.heads), and by their average log-posterior (the
geometric mean of the two posteriors, renormalised: a score-level fusion
with equal weights). Datasets: the real corpora of
benchmarks/real_defaults.py (real_klettres_128, real_ktuberling_128) and
the synthetic voices20_128. Writes --out (JSON) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # as a script
from benchmarks.measure import machine, write_json  # noqa: E402

DATASETS = ("a2i_speakers/real_klettres_128", "a2i_speakers/real_ktuberling_128",
            "a2i_speakers/voices20_128")


def clips_right(network, lda, split) -> dict:
  """Clips right of the softmax, LDA and their average log-posterior."""
  from trainer.heads import posteriors

  softmax, labels = posteriors(network, split)
  lda_p, _ = posteriors(lda, split)
  fused = np.log(np.clip(softmax, 1e-12, 1)) + np.log(np.clip(lda_p, 1e-12, 1))
  return {"clips": int(len(labels)),
          **{name: int((p.argmax(axis=1) == labels).sum())
             for name, p in (("softmax", softmax), ("lda", lda_p), ("fused", fused))}}


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--data_dir", help="the TFDS data dir of the real corpora")
  p.add_argument("--voices20_data_dir", help="the one of voices20_128 (default: --data_dir)")
  p.add_argument("--datasets", nargs="+", default=list(DATASETS))
  p.add_argument("--seeds", type=int, default=3)
  p.add_argument("--out", default="docs/results/backend_fusion.json")
  args = p.parse_args(argv)
  if not args.data_dir:
    p.error("--data_dir is needed")
  from trainer import quiet

  quiet.start_tensorflow()
  from trainer.config import TrainConfig
  from trainer.train import train

  out = {"machine": machine(), "command": "python benchmarks/backend_fusion.py " + shlex.join(
      sys.argv[1:] if argv is None else argv), "runs": []}
  for dataset in args.datasets:
    data_dir = (args.voices20_data_dir or args.data_dir) if "voices20" in dataset \
        else args.data_dir
    for seed in range(args.seeds):
      result = train(TrainConfig(dataset=dataset, data_dir=data_dir, seed=seed,
                                 backend="lda").checked(), verbose=0)
      row = {"dataset": dataset, "seed": seed,
             **{name: clips_right(result.network, result.lda, split)
                for name, split in (("validation", result.splits.validation),
                                    ("test", result.splits.test))}}
      print(json.dumps(row), flush=True)
      out["runs"].append(row)
      write_json(args.out, out)
  print(table(out))
  return 0


def table(out: dict) -> str:
  lines = ["| dataset | test clips right per seed: softmax | LDA | average of both | sums (softmax, LDA, average) |",
           "|---|---|---|---|---|"]
  for dataset in dict.fromkeys(r["dataset"] for r in out["runs"]):
    runs = [r["test"] for r in out["runs"] if r["dataset"] == dataset]
    cols = {k: [r[k] for r in runs] for k in ("softmax", "lda", "fused")}
    lines.append(f"| {dataset.split('/')[1]} ({runs[0]['clips']} test clips) | "
                 + " | ".join(", ".join(map(str, v)) for v in cols.values())
                 + f" | {', '.join(str(sum(v)) for v in cols.values())} |")
  return "\n".join(lines)


if __name__ == "__main__":
  sys.exit(main())
