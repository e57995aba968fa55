"""The same trainer.fit on each Keras 3 backend: accuracy, wall time, peak memory.

    python benchmarks/keras_backends.py --data_dir D --dataset a2i_speakers/demo_128 --backends tensorflow jax

Runs `python -m trainer.fit` with every default but the backend
(KERAS_BACKEND), measured as a whole process tree (benchmarks.measure), and
writes each run's test accuracy, the network's softmax accuracy, epochs,
wall time and peak RSS to docs/training_keras_backends.json.
"""

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.measure import machine, run_measured  # noqa: E402


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--data_dir", required=True)
  p.add_argument("--dataset", default="a2i_speakers/demo_128")
  p.add_argument("--backends", nargs="+", default=["tensorflow", "jax"])
  p.add_argument("--seed", default="0")
  p.add_argument("--out", default="docs/training_keras_backends.json")
  args = p.parse_args(argv)
  rows = {}
  for backend in args.backends:
    run = tempfile.mkdtemp(prefix=f"a2i_{backend}_")
    cmd = [sys.executable, "-m", "trainer.fit", "--dataset", args.dataset, "--data_dir",
           args.data_dir, "--output", run, "--seed", args.seed]
    measured = run_measured(cmd, env={"KERAS_BACKEND": backend})
    if measured["returncode"] != 0:
      raise SystemExit(f"{backend}: {measured['stderr'][-2000:]}")
    with open(os.path.join(run, "metrics.json")) as f:
      m = json.load(f)
    rows[backend] = {"test_accuracy": m["test_accuracy"], "test_examples": m["test_examples"],
                     "test_accuracy_softmax": m["backend"].get("test_accuracy_softmax"),
                     "epochs_run": m["epochs_run"], "keras_backend": m["keras_backend"],
                     "device": m["device"], "precision": m["precision"],
                     "wall_minutes": round(measured["seconds"] / 60, 2),
                     "peak_rss_gb": round(measured["peak_rss"] / 2**30, 2)}
    print(backend, rows[backend], flush=True)
  with open(args.out, "w") as f:
    json.dump({"command": "python benchmarks/keras_backends.py " + " ".join(
                   sys.argv[1:] if argv is None else argv),
               "machine": machine(), "dataset": args.dataset, "runs": rows}, f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
