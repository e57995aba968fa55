"""How much of the audio does the green plane keep? SI-SNR of every clip's green plane.

    python -m trainer.reconstruction --dataset a2i_speakers --output runs/reconstruction

Decodes the green plane of each clip (pipeline.encode.decode_green) and
compares it with the clip's original audio, over the clip's real length
(padding excluded), at the green plane's rate (the original is resampled down
for planes smaller than 256 px). Needs the corpus the dataset was built from.
Writes reconstruction.json, reconstruction.md and reconstruction.png.
"""

from __future__ import annotations

import os
import sys

from pipeline.console import CommandParser


def main(argv=None) -> int:
  p = CommandParser(prog="python -m trainer.reconstruction",
                              description=__doc__.split("\n")[0])
  p.add_argument("--dataset", default="a2i_speakers")
  p.add_argument("--data_dir")
  p.add_argument("--output", default="runs/reconstruction")
  p.add_argument("--split", default="all", help="a split name or 'all'")
  args = p.parse_args(argv)
  from trainer import quiet

  quiet.start_tensorflow()
  import numpy as np
  import tensorflow_datasets as tfds

  from pipeline.audio import resample
  from pipeline.clips import clips_of
  from pipeline.encode import decode_green, si_snr
  from trainer import data, results
  from trainer.clip_audio import corpus_root
  from trainer.report import dataset_identity

  dataset, data_dir = data.open_or_exit(args.dataset, args.data_dir)
  root = corpus_root(dataset, data_dir)
  if root is None:
    print(f"error: the corpus of {args.dataset} ({dataset.info.metadata.get('input')}) is not "
          "readable here; reconstruction needs the original audio", file=sys.stderr)
    return 2
  spec, size = dataset.spec, dataset.image_size
  splits = list(dataset.info.splits) if args.split == "all" else [args.split]
  values, clips_cache = [], {}
  for split in splits:
    for ex in tfds.as_numpy(dataset.builder.as_dataset(split=split)):
      rel = ex["recording"].decode()
      if rel not in clips_cache:
        clips_cache.clear()  # one recording at a time is enough: examples of a file are few
        clips_cache[rel] = clips_of(os.path.join(root, rel), spec)
      original = clips_cache[rel][int(ex["clip_index"])].samples
      decoded, rate = decode_green(ex["image"], spec)
      reference = resample(original, spec.sample_rate, rate) if rate < spec.sample_rate \
          else original
      values.append(si_snr(reference, decoded[:len(reference)]))
  v = np.array(values)
  stats = {"mean": float(v.mean()), "median": float(np.median(v)), "std": float(v.std()),
           "p05": float(np.percentile(v, 5)), "p95": float(np.percentile(v, 95)),
           "min": float(v.min()), "max": float(v.max())}
  green_rate = spec.green_rate(size)
  outcome = {"dataset": dataset_identity(dataset.builder), "image_size": size,
             "green_rate_hz": green_rate, "returned_rate_hz": min(green_rate, spec.sample_rate),
             "law": spec.green_law, "clips": len(v), "si_snr_db": stats,
             "per_clip_db": [round(float(x), 3) for x in v]}
  markdown = (f"### Green-plane reconstruction on {args.dataset} ({size} px, {spec.green_law}, "
              f"green rate {green_rate:g} Hz)\n\n| clips | mean | median | 5th pct | 95th pct "
              f"| min | max |\n|---|---|---|---|---|---|---|\n| {len(v)} | "
              + " | ".join(f"{stats[k]:.1f} dB" for k in ("mean", "median", "p05", "p95", "min",
                                                          "max")) + " |")
  plt = results.pyplot()
  fig, ax = plt.subplots(figsize=(5, 3.2))
  ax.hist(v, bins=40, color="#3c8d40")
  ax.axvline(30, color="k", ls=":", label="30 dB")
  ax.set_xlabel("SI-SNR of the decoded green plane (dB)")
  ax.set_ylabel("clips")
  ax.set_title(f"{args.dataset}, {size} px", fontsize=9)
  ax.legend(fontsize=8)
  fig.tight_layout()
  results.write(args.output, "reconstruction", outcome, markdown, fig)
  print(f"{len(v)} clips: SI-SNR median {stats['median']:.1f} dB, 5th percentile "
        f"{stats['p05']:.1f} dB -> {args.output}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
