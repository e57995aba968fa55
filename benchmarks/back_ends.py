"""Back ends on the embeddings of the default `cells` runs, measured offline.

    python benchmarks/back_ends.py --data_dir D --datasets a2i_speakers/real_klettres_128 \
        --seeds 3 --cache W/embeddings

Per dataset and seed, one `cells` training with the defaults
(trainer.train.train, as `trainer.fit` trains); its training, validation
and test clips' embeddings and the network's own log-posteriors go to
--cache (read back on a second run: only the back ends are computed
again). Then on the same clips, in numpy, each back end of `VARIANTS`:
the network's softmax, LDA as trainer.heads fits it (a fixed ridge on the
shared covariance), LDA with the covariance shrunk by Ledoit-Wolf or OAS
(the shrinkage estimated from the training clips), LDA on length-normalised
embeddings, and the average of the softmax's and each LDA's
log-posteriors. Per dataset, the seeds' runs as one ensemble too: their
default back ends' log-posteriors added (`ensemble`). Writes --out (JSON:
every run's clips right per back end on validation and test) and prints a
table of test clips right.
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


def embeddings(dataset: str, data_dir: str, seed: int, cache: str) -> dict:
  """The default run's embeddings and softmax log-posteriors per split, from
  `cache` or trained now."""
  path = os.path.join(cache, f"{dataset.replace('/', '_')}_seed{seed}.npz")
  if os.path.exists(path):
    return dict(np.load(path))
  from trainer.config import TrainConfig
  from trainer.heads import embeddings_of, posteriors
  from trainer.train import train

  result = train(TrainConfig(dataset=dataset, data_dir=data_dir, seed=seed).checked(), verbose=0)
  arrays = {}
  for name in ("train", "validation", "test"):
    split = getattr(result.splits, name)
    arrays[f"{name}_embedding"], arrays[f"{name}_label"] = embeddings_of(result.network, split)
    if name != "train":
      p, _ = posteriors(result.network, split)
      arrays[f"{name}_softmax"] = np.log(np.clip(p, 1e-30, 1))
      p, _ = posteriors(result.model, split)
      arrays[f"{name}_default"] = np.log(np.clip(p, 1e-30, 1))
  os.makedirs(cache, exist_ok=True)
  np.savez(path, **arrays)
  return arrays


def shrunk_covariance(name: str):
  """The shared covariance as scikit-learn's Ledoit-Wolf or OAS estimates it
  from the embeddings centred on their speakers' means (fit_lda's
  `covariance`)."""
  from sklearn import covariance

  estimate = {"ledoit_wolf": covariance.ledoit_wolf, "oas": covariance.oas}[name]
  return lambda centred: estimate(centred, assume_centered=True)[0]


def lda_scores(train_e, train_y, classes: int, *others, shrinkage: str | None = None,
               length_norm: bool = False):
  """LDA's log-posteriors for each array of `others` (trainer.heads.fit_lda,
  or with the shared covariance shrunk as `shrinkage` says)."""
  from scipy.special import log_softmax

  from trainer.heads import fit_lda

  if length_norm:
    mean = train_e.mean(axis=0)
    scale = np.sqrt(train_e.shape[1])

    def norm(e):
      c = e - mean
      return scale * c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)

    train_e, others = norm(train_e), [norm(o) for o in others]
  w, b = fit_lda(train_e, train_y, classes,
                 covariance=shrunk_covariance(shrinkage) if shrinkage else None)
  return [log_softmax(np.asarray(o, np.float64) @ w + b, axis=1) for o in others]


VARIANTS = {"lda": {}, "lda_ledoit_wolf": {"shrinkage": "ledoit_wolf"},
            "lda_oas": {"shrinkage": "oas"}, "lda_length_norm": {"length_norm": True}}


def back_ends(a: dict) -> dict:
  """{split: {back end: clips right}} for validation and test."""
  classes = a["validation_softmax"].shape[1]
  out = {}
  scores = {"validation": {"softmax": a["validation_softmax"],
                           "default": a["validation_default"]},
            "test": {"softmax": a["test_softmax"], "default": a["test_default"]}}
  for name, kw in VARIANTS.items():
    val, test = lda_scores(a["train_embedding"], a["train_label"], classes,
                           a["validation_embedding"], a["test_embedding"], **kw)
    for split, s in (("validation", val), ("test", test)):
      scores[split][name] = s
      scores[split]["average_" + name] = (s + scores[split]["softmax"]) / 2
  for split, table in scores.items():
    y = a[f"{split}_label"]
    out[split] = {"clips": int(len(y)),
                  **{name: int((s.argmax(axis=1) == y).sum()) for name, s in table.items()}}
  return out


def ensemble(runs: list[dict]) -> dict:
  """Clips right on validation and test by the runs' default back ends
  together (their log-posteriors added: the product of their posteriors),
  and how many clips each run's default gets wrong in every run and in
  some run. The runs must hold the same clips in the same order."""
  out = {"seeds": len(runs)}
  for split in ("validation", "test"):
    y = runs[0][f"{split}_label"]
    if any(not np.array_equal(r[f"{split}_label"], y) for r in runs):
      raise ValueError(f"the runs' {split} clips differ: no ensemble")
    scores = sum(r[f"{split}_default"] for r in runs)
    wrong = np.stack([r[f"{split}_default"].argmax(axis=1) != y for r in runs])
    out[split] = {"clips": int(len(y)), "ensemble": int((scores.argmax(axis=1) == y).sum()),
                  "wrong_in_every_run": int(wrong.all(axis=0).sum()),
                  "wrong_in_some_run": int(wrong.any(axis=0).sum())}
  return out


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--data_dir", required=True)
  p.add_argument("--datasets", nargs="+", required=True)
  p.add_argument("--seeds", type=int, default=3)
  p.add_argument("--cache", required=True, help="folder for the runs' embeddings")
  p.add_argument("--out", default="docs/results/back_ends.json")
  args = p.parse_args(argv)
  from trainer import quiet

  quiet.start_tensorflow()
  out = {"machine": machine(), "command": "python benchmarks/back_ends.py " + shlex.join(
      sys.argv[1:] if argv is None else argv), "runs": []}
  for dataset in args.datasets:
    runs = []
    for seed in range(args.seeds):
      runs.append(embeddings(dataset, args.data_dir, seed, args.cache))
      row = {"dataset": dataset, "seed": seed, **back_ends(runs[-1])}
      print(json.dumps(row), flush=True)
      out["runs"].append(row)
      write_json(args.out, out)
    out.setdefault("ensembles", []).append({"dataset": dataset, **ensemble(runs)})
    write_json(args.out, out)
  print(table(out))
  return 0


def table(out: dict) -> str:
  names = [k for k in out["runs"][0]["test"] if k != "clips"]
  ensembles = {e["dataset"]: e["test"]["ensemble"] for e in out.get("ensembles", [])}
  lines = ["| dataset | test clips | " + " | ".join(names) + " | ensemble of the seeds |",
           "|---|---|" + "---|" * (len(names) + 1)]
  for dataset in dict.fromkeys(r["dataset"] for r in out["runs"]):
    runs = [r["test"] for r in out["runs"] if r["dataset"] == dataset]
    lines.append(f"| {dataset.split('/')[1]} | {runs[0]['clips']} | "
                 + " | ".join(f"{sum(r[n] for r in runs)} ({', '.join(str(r[n]) for r in runs)})"
                              for n in names)
                 + f" | {ensembles.get(dataset, '')} |")
  return "\n".join(lines)


if __name__ == "__main__":
  sys.exit(main())
