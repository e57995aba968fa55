"""`cells` against the paper's CNN, trained the same way on the same splits.

    python benchmarks/compare_models.py --data_dir DIR \
        --datasets a2i_speakers/voices20_128 a2i_speakers/klettres_128 --seeds 0 1

Each (dataset, model, seed) is `python -m trainer.fit --dataset D --model M
--seed S` with every other setting at its default (or as --flags sets it,
e.g. --flags="--pooling voiced --backend lda"), measured as a user would
see it: wall time, peak RSS of the process tree, the run's test accuracy
(with --backend lda, also the network's own softmax's, from the same run).
Writes --out (JSON) and prints a Markdown table. Datasets must be built
(trainer.fit says how when one is not).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # as a script
from benchmarks.measure import machine, run_measured  # noqa: E402


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--data_dir", default=os.path.expanduser("~/tensorflow_datasets"))
  p.add_argument("--datasets", nargs="+", default=["a2i_speakers/voices20_128"])
  p.add_argument("--models", nargs="+", default=["cells", "paper"])
  p.add_argument("--seeds", nargs="+", type=int, default=[0])
  p.add_argument("--flags", default="", help="more trainer.fit flags for every run")
  p.add_argument("--out", default="docs/training_models.json")
  p.add_argument("--append", action="store_true",
                 help="keep the rows already in --out (each row records its command)")
  args = p.parse_args(argv)
  command = "python benchmarks/compare_models.py " + shlex.join(
      sys.argv[1:] if argv is None else argv)
  result = {"machine": machine(), "command": command, "runs": {}}
  if args.append and os.path.exists(args.out):
    with open(args.out) as f:
      before = json.load(f)
    result["runs"] = before["runs"]
    for row in result["runs"].values():
      row.setdefault("written_by", before["command"])
  for dataset in args.datasets:
    for model in args.models:
      runs = []
      for seed in args.seeds:
        output = tempfile.mkdtemp(prefix="compare_models_")
        run = run_measured([sys.executable, "-m", "trainer.fit", "--dataset", dataset,
                            "--data_dir", args.data_dir, "--output", output, "--model", model,
                            "--seed", str(seed), *shlex.split(args.flags)])
        if run["returncode"]:
          raise SystemExit(run["stderr"][-3000:])
        with open(os.path.join(output, "metrics.json")) as f:
          m = json.load(f)
        shutil.rmtree(output)
        runs.append({"seed": seed, "test_accuracy": m["test_accuracy"],
                     "macro_f1": m["macro_f1"], "epochs_run": m["epochs_run"],
                     "wall_seconds": round(run["seconds"], 1),
                     "peak_rss_mb": round(run["peak_rss"] / 2**20),
                     "parameters": m["parameters"], "test_examples": m["test_examples"],
                     "speakers": len(m["speakers"]), "dataset_version": m["dataset"]["version"],
                     "fusion": m.get("fusion"), "pooling": m.get("pooling", "all"),
                     "backend": m.get("backend", {"name": "softmax"})})
        print(json.dumps({"dataset": dataset, "model": model, **runs[-1]}), flush=True)
      accuracies = [r["test_accuracy"] for r in runs]
      softmax = [r["backend"].get("test_accuracy_softmax", r["test_accuracy"]) for r in runs]
      result["runs"][" ".join(filter(None, (dataset, model, args.flags)))] = {
          "dataset": dataset, "model": model, "flags": args.flags, "runs": runs,
          "softmax_accuracy_mean": statistics.fmean(softmax),
          "accuracy_mean": statistics.fmean(accuracies),
          "accuracy_min": min(accuracies), "accuracy_max": max(accuracies),
          "wall_seconds_mean": statistics.fmean(r["wall_seconds"] for r in runs),
          "written_by": command}
      with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
  print("| dataset | model | flags | test accuracy (mean, min-max) | wall per run |")
  print("|---|---|---|---|---|")
  for row in result["runs"].values():
    print(f"| {row['dataset']} | {row['model']} | {row.get('flags', '')} | "
          f"{row['accuracy_mean']:.3f} "
          f"({row['accuracy_min']:.3f}-{row['accuracy_max']:.3f}) | "
          f"{row['wall_seconds_mean'] / 60:.1f} min |")
  return 0


if __name__ == "__main__":
  sys.exit(main())
