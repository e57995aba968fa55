"""What does the first layer look at? Its 3x3 kernels drawn per input plane.

    python -m trainer.filters --model runs/a2i_speakers/model.keras --output runs/filters

Writes filters.png (one row of kernels per input plane, each kernel scaled to
its own range) and filters.json with, per plane, the share of the layer's
weight magnitude and how many kernels are smoothing (weights of one sign,
responding to level) or differencing (weights summing to about zero,
responding to change between neighbouring pixels).
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def describe_kernels(kernel, planes: str) -> dict:
  """kernel: (3, 3, channels, filters) -> per-plane statistics."""
  import numpy as np

  magnitude = np.abs(kernel).sum(axis=(0, 1, 3))
  out = {}
  for c, plane in enumerate(planes):
    k = kernel[:, :, c, :].reshape(9, -1)
    balance = np.abs(k.sum(axis=0)) / (np.abs(k).sum(axis=0) + 1e-12)
    out[plane] = {"weight_share": float(magnitude[c] / magnitude.sum()),
                  "smoothing_kernels": int((balance > 0.6).sum()),
                  "differencing_kernels": int((balance < 0.2).sum()),
                  "kernels": int(k.shape[1])}
  return out


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="python -m trainer.filters", description=__doc__.split("\n")[0])
  p.add_argument("--model", required=True)
  p.add_argument("--output", default="runs/filters")
  args = p.parse_args(argv)
  if not os.path.isfile(args.model):
    p.error(f"--model {args.model}: no such file")
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  from trainer.predict import load_run

  model, settings = load_run(args.model)
  planes = "".join(c.upper() for c in settings["channels"])
  kernels = [layer.get_weights()[0] for layer in model.layers
             if layer.__class__.__name__ == "Conv2D" and layer.kernel_size == (3, 3)]
  kernel = next((k for k in kernels if k.shape[2] == len(planes)), None)
  if kernel is None:
    print(f"error: {model.name} has no 3x3 convolution over all its input planes "
          f"({planes}); the `cells` model reads red and blue cell by cell, so study a "
          "`--model paper` run", file=sys.stderr)
    return 2
  stats = describe_kernels(kernel, planes)
  os.makedirs(args.output, exist_ok=True)
  with open(os.path.join(args.output, "filters.json"), "w") as f:
    json.dump({"model": args.model, "planes": stats}, f, indent=1)
  n = kernel.shape[3]
  fig, axes = plt.subplots(len(planes), n, figsize=(n * 0.45, len(planes) * 0.6 + 0.4),
                           squeeze=False)
  for c, plane in enumerate(planes):
    for k in range(n):
      ax = axes[c][k]
      ax.imshow(kernel[:, :, c, k], cmap="coolwarm")
      ax.set_xticks([]), ax.set_yticks([])
    axes[c][0].set_ylabel(f"{plane} {100 * stats[plane]['weight_share']:.0f}%", fontsize=7,
                          color={"R": "darkred", "G": "darkgreen", "B": "darkblue"}[plane])
  fig.suptitle("first-layer 3x3 kernels per input plane (share of weight magnitude)",
               fontsize=8)
  fig.savefig(os.path.join(args.output, "filters.png"), dpi=110, bbox_inches="tight")
  plt.close(fig)
  for plane, s in stats.items():
    print(f"{plane}: {100 * s['weight_share']:.0f}% of the weight, {s['smoothing_kernels']} "
          f"smoothing and {s['differencing_kernels']} differencing kernels of {s['kernels']}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
