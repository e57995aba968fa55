"""The README's training commands with their defaults: time, memory, accuracy.

    python benchmarks/fit_defaults.py [--data_dir /data/tfds] [--out docs/training_defaults.json]

Builds what is missing (the 512 px demo; voices20 at 128 px), then runs
`python -m trainer.fit` as a user would (no flag but --data_dir and
--dataset) and measures wall time, peak RSS of the whole process tree and
the run's own metrics. Targets: the demo in <= 10 min with test accuracy
>= 0.99 and <= 4 GB; voices20 at 128 px >= 0.95 in <= 15 min.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile

from benchmarks.measure import run_measured

RUNS = {
    "demo, 512 px": ("a2i_speakers", ["--runner=DirectRunner"]),
    "voices20, 128 px": ("a2i_speakers/voices20_128",
                         ["--demo", "voices20", "--image_size", "128", "--runner=DirectRunner"]),
}


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--data_dir", default=os.path.expanduser("~/tensorflow_datasets"))
  p.add_argument("--out", default="docs/training_defaults.json")
  p.add_argument("--only", help="one of: " + ", ".join(RUNS))
  args = p.parse_args(argv)
  result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                       f"Python {platform.python_version()}",
            "command": "python benchmarks/fit_defaults.py " + " ".join(
                sys.argv[1:] if argv is None else argv), "runs": {}}
  if args.only and os.path.exists(args.out):
    with open(args.out) as f:
      result["runs"] = json.load(f).get("runs", {})
  for name, (dataset, build) in RUNS.items():
    if args.only and name != args.only:
      continue
    made = run_measured([sys.executable, "-m", "pipeline.build", "--data_dir", args.data_dir,
                         *build])
    if made["returncode"]:
      raise SystemExit(made["stderr"][-2000:])
    output = tempfile.mkdtemp(prefix="fit_defaults_")
    cmd = [sys.executable, "-m", "trainer.fit", "--dataset", dataset, "--data_dir",
           args.data_dir, "--output", output]
    run = run_measured(cmd, echo=True)
    if run["returncode"]:
      raise SystemExit(run["stderr"][-3000:])
    with open(os.path.join(output, "metrics.json")) as f:
      metrics = json.load(f)
    shutil.rmtree(output)
    result["runs"][name] = {
        "command": f"python -m trainer.fit --dataset {dataset}",
        "wall_seconds": round(run["seconds"], 1),
        "peak_rss_mb": round(run["peak_rss"] / 2**20),
        "test_accuracy": metrics["test_accuracy"], "test_examples": metrics["test_examples"],
        "speakers": len(metrics["speakers"]), "model": metrics["model"],
        "parameters": metrics["parameters"], "epochs_scheduled": metrics["epochs_scheduled"],
        "epochs_run": metrics["epochs_run"], "best_epoch": metrics["best_epoch"],
        "train_seconds": metrics["train_seconds_this_run"]}
    print(json.dumps(result["runs"][name]), flush=True)
  with open(args.out, "w") as f:
    json.dump(result, f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
