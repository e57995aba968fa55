"""Is the input pipeline ever the bottleneck? tf.data images/s vs training images/s.

    python benchmarks/input_pipeline.py --data_dir DIR [--datasets a2i_speakers/demo_128 a2i_speakers]

For each dataset: the training input pipeline of trainer.data alone, read
twice (the first pass decodes PNGs and fills the cache, the second reads the
cache), against training steps of each model on the same batches (`cells`,
the default, with and without XLA; `paper`). Results go to
docs/performance_input.json.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf

from trainer import data
from trainer.networks import build_model, compile_model
sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks.measure
from benchmarks.measure import machine  # noqa: E402


def images_per_second(ds, max_batches=None):
  n, t0 = 0, time.perf_counter()
  for i, (x, _) in enumerate(ds):
    n += int(x.shape[0])
    if max_batches and i + 1 >= max_batches:
      break
  return n / (time.perf_counter() - t0)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--data_dir", default=None)
  parser.add_argument("--datasets", nargs="+", default=["a2i_speakers/demo_128", "a2i_speakers"])
  parser.add_argument("--batch_size", type=int, default=32)
  parser.add_argument("--train_batches", type=int, default=8)
  parser.add_argument("--models", nargs="+", default=["cells", "cells+xla", "paper"],
                      help="model names; '+xla' compiles the training step with XLA")
  parser.add_argument("--out", default="docs/performance_input.json")
  args = parser.parse_args()
  results = {"machine": f"{machine()}, "
                        f"{'GPU' if tf.config.list_physical_devices('GPU') else 'CPU only'}",
             "command": "python benchmarks/input_pipeline.py " + " ".join(sys.argv[1:]),
             "batch_size": args.batch_size, "models": args.models, "runs": {}}
  for name in args.datasets:
    splits = data.load(name, args.data_dir, "rgb", args.batch_size, seed=0)
    size = splits.dataset.image_size
    first = images_per_second(splits.train)        # PNG decode + cache fill
    cached = images_per_second(splits.train)       # what every later epoch sees
    batches = [b for _, b in zip(range(args.train_batches + 1), splits.train)]
    row = {"image_size": size, "input_first_epoch_images_per_s": round(first, 1),
           "input_cached_images_per_s": round(cached, 1), "training_images_per_s": {}}
    for variant in args.models:
      keras.backend.clear_session()
      model_name, _, xla = variant.partition("+")
      model = compile_model(build_model(model_name, splits.dataset.spec, size, "rgb",
                                        len(splits.speakers)), 1e-3,
                            jit_compile=bool(xla))
      model.train_on_batch(*batches[0])            # build and trace (and compile)
      t0 = time.perf_counter()
      for x, y in batches[1:]:
        model.train_on_batch(x, y)
      train = sum(int(x.shape[0]) for x, _ in batches[1:]) / (time.perf_counter() - t0)
      row["training_images_per_s"][variant] = round(train, 1)
      row[f"parameters_{model_name}"] = model.count_params()
    fastest = max(row["training_images_per_s"].values())
    row["input_headroom_x"] = round(min(first, cached) / fastest, 1)
    results["runs"][name] = row
    print(name, row, flush=True)
  with open(args.out, "w") as f:
    json.dump(results, f, indent=2)


if __name__ == "__main__":
  main()
