"""What does the first layer look at? A trained model's first filters, drawn and summarised.

    python -m trainer.filters --model runs/a2i_speakers/model.keras --output runs/filters

`paper` (and any model with a 3x3 convolution over all its planes): one row
of kernels per input plane, each scaled to its own range; filters.json gives,
per plane, the share of the layer's weight magnitude and how many kernels are
smoothing (weights of one sign, responding to level) or differencing
(weights summing to about zero, responding to change between neighbouring
pixels).

`cells`: red and blue are read cell by cell (1x1), so its first filters are
the learned filterbank over the green waveform; filters.png shows each
filter's frequency response, sorted by its peak, and filters.json each
filter's peak frequency and -6 dB bandwidth and how many peak in each band,
with the same for the architecture freshly initialised (what training changed).
"""

from __future__ import annotations

import os
import sys

from pipeline.console import CommandParser


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


BANDS_HZ = (0, 300, 1000, 2000, 4000, 8000)


def describe_filterbank(kernel, rate: float, n_fft: int = 1024) -> dict:
  """kernel: (taps, 1, filters) of a Conv1D over a waveform at `rate` Hz ->
  per filter peak frequency and -6 dB bandwidth; filters per band;
  the normalised magnitude responses (filters, n_fft // 2 + 1)."""
  import numpy as np

  taps = kernel[:, 0, :].T                                   # (filters, taps)
  response = np.abs(np.fft.rfft(taps, n=n_fft, axis=1))
  response /= response.max(axis=1, keepdims=True) + 1e-12
  freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)
  peak = freqs[response.argmax(axis=1)]
  width = (response >= 0.5).sum(axis=1) * (freqs[1] - freqs[0])
  edges = [e for e in BANDS_HZ if e < rate / 2] + [rate / 2]
  per_band = {f"{lo:g}-{hi:g} Hz": int(((peak >= lo) & (peak < hi)).sum())
              for lo, hi in zip(edges[:-1], edges[1:])}
  per_band[f"{edges[-2]:g}-{edges[-1]:g} Hz"] += int((peak == edges[-1]).sum())
  order = np.argsort(peak, kind="stable")
  return {"rate_hz": float(rate), "taps": int(taps.shape[1]), "filters": int(taps.shape[0]),
          "peak_hz": [float(v) for v in peak[order]],
          "bandwidth_hz": [float(v) for v in width[order]],
          "median_bandwidth_hz": float(np.median(width)),
          # mean of the normalised response: 1 for an all-pass, small for a sharp band-pass
          "median_mean_response": float(np.median(response.mean(axis=1))),
          "filters_per_band": per_band, "response": response[order], "freqs": freqs}


def _filterbank_figure(model, stats):
  from trainer.results import pyplot

  fig, ax = pyplot().subplots(figsize=(6, 3.2))
  ax.imshow(stats["response"], aspect="auto", origin="lower", cmap="magma",
            extent=(0, stats["freqs"][-1], 0, stats["filters"]))
  ax.set_xlabel("frequency (Hz)")
  ax.set_ylabel("filter (sorted by peak)")
  ax.set_title(f"{model.name}: learned green filterbank, magnitude response "
               f"({stats['taps']} taps at {stats['rate_hz']:g} Hz)", fontsize=8)
  fig.tight_layout()
  return fig


def _filterbank(model, args) -> int:
  import keras

  from trainer import results
  from trainer.layers import GreenWaveform

  unfold = next(layer for layer in model.layers if isinstance(layer, GreenWaveform))
  rate = unfold.rate(model.input.shape[1])
  stats = describe_filterbank(model.get_layer("filterbank").get_weights()[0], rate)
  # The same architecture freshly initialised: what training changed.
  keras.utils.set_random_seed(0)
  fresh = describe_filterbank(
      keras.models.clone_model(model).get_layer("filterbank").get_weights()[0], rate)
  summary = lambda d: {k: v for k, v in d.items() if k not in ("response", "freqs")}
  bands = lambda d: ", ".join(f"{band} {n}" for band, n in d["filters_per_band"].items())
  markdown = (f"### Green filterbank of {args.model}\n\n{stats['filters']} filters of "
              f"{stats['taps']} taps at {stats['rate_hz']:g} Hz. Peaks per band: {bands(stats)} "
              f"(at initialisation: {bands(fresh)}). Median -6 dB bandwidth "
              f"{stats['median_bandwidth_hz']:.0f} Hz ({fresh['median_bandwidth_hz']:.0f} Hz "
              "at initialisation).")
  results.write(args.output, "filters", {"model": args.model, "green_filterbank": summary(stats),
                                         "at_initialisation": summary(fresh)},
                markdown, _filterbank_figure(model, stats), dpi=110)
  print(f"green filterbank: {stats['filters']} filters of {stats['taps']} taps at "
        f"{stats['rate_hz']:g} Hz; peaks per band: "
        + ", ".join(f"{band} {n}" for band, n in stats["filters_per_band"].items())
        + f"; median -6 dB bandwidth {stats['median_bandwidth_hz']:.0f} Hz "
        f"({fresh['median_bandwidth_hz']:.0f} Hz at initialisation)")
  return 0


def main(argv=None) -> int:
  p = CommandParser(prog="python -m trainer.filters", description=__doc__.split("\n")[0])
  p.add_argument("--model", required=True)
  p.add_argument("--output", default="runs/filters")
  args = p.parse_args(argv)
  if not os.path.isfile(args.model):
    p.error(f"--model {args.model}: no such file")
  from trainer import quiet

  quiet.start_tensorflow()
  from trainer import results
  from trainer.predict import load_run

  model, settings = load_run(args.model)
  planes = "".join(c.upper() for c in settings["channels"])
  kernels = [layer.get_weights()[0] for layer in model.layers
             if layer.__class__.__name__ == "Conv2D" and layer.kernel_size == (3, 3)]
  kernel = next((k for k in kernels if k.shape[2] == len(planes)), None)
  if kernel is None and any(layer.name == "filterbank" for layer in model.layers):
    return _filterbank(model, args)
  if kernel is None:
    print(f"error: {model.name} has neither a 3x3 convolution over all its input planes "
          f"({planes}) nor a green filterbank", file=sys.stderr)
    return 2
  stats = describe_kernels(kernel, planes)
  n = kernel.shape[3]
  fig, axes = results.pyplot().subplots(len(planes), n, figsize=(n * 0.45, len(planes) * 0.6 + 0.4),
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
  markdown = (f"### First-layer kernels of {args.model}\n\n| plane | weight share | smoothing "
              "| differencing | kernels |\n|---|---|---|---|---|\n" + "".join(
                  f"| {plane} | {s['weight_share']:.3f} | {s['smoothing_kernels']} | "
                  f"{s['differencing_kernels']} | {s['kernels']} |\n"
                  for plane, s in stats.items()))
  results.write(args.output, "filters", {"model": args.model, "planes": stats}, markdown, fig,
                dpi=110)
  for plane, s in stats.items():
    print(f"{plane}: {100 * s['weight_share']:.0f}% of the weight, {s['smoothing_kernels']} "
          f"smoothing and {s['differencing_kernels']} differencing kernels of {s['kernels']}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
