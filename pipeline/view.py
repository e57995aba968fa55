"""A labelled view of an encoded image: RGB and its three planes side by side.

    python -m pipeline.view speech.wav --out view.png          # encodes the first clip
    python -m pipeline.view imgs/speech_clip000.png --out view.png
    python -m pipeline.view speech.wav --image_size 128 --clip 2 --out view.png

Red and blue cells are labelled with their descriptor (docs/encoding.md);
for audio, the green plane's title gives how faithfully it holds the clip
(SI-SNR of the decoded waveform against the clip).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from pipeline.audio import AUDIO_EXTENSIONS, AudioError, resample
from pipeline.clips import clips_of
from pipeline.console import CommandParser
from pipeline.encode import decode_green, encode_clip, si_snr
from pipeline.spec import DEFAULT_SPEC, GRID, IMAGE_SIZES, TRACKS, cell_size


def draw(image: np.ndarray, title: str, out: str, snr: float | None = None) -> None:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  n = image.shape[0]
  fig, axes = plt.subplots(1, 4, figsize=(20, 5.6))
  axes[0].imshow(image)
  axes[0].set_title(f"RGB, {n} x {n} ({title})", fontsize=9)
  green = "green: waveform, mu-law" + (f" (SI-SNR {snr:.1f} dB)" if snr is not None else "")
  p = cell_size(n)
  for ax, k, name, cmap in ((axes[1], 0, "red: median | mean per descriptor", "Reds"),
                            (axes[2], 1, green, "Greens"),
                            (axes[3], 2, "blue: descriptor time courses", "Blues")):
    ax.imshow(image[..., k], cmap=cmap, vmin=0, vmax=255)
    ax.set_title(name, fontsize=10)
    if k != 1 and p >= 18:                 # labels fit cells of 18 px and more
      for i, t in enumerate(TRACKS):
        r, c = divmod(i, GRID)
        ax.text(c * p + 2, r * p + min(12, p - 2), t.name, fontsize=6 if p >= 36 else 4,
                color="black" if k == 0 else "white")
  for ax in axes:
    ax.set_xticks([]), ax.set_yticks([])
  fig.tight_layout()
  fig.savefig(out, dpi=80)
  plt.close(fig)


def main(argv=None) -> int:
  parser = CommandParser(prog="python -m pipeline.view",
                                   description=__doc__.split("\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog="\n".join(__doc__.split("\n")[2:]))
  parser.add_argument("file", help="an audio file, or a PNG written by pipeline.encode")
  parser.add_argument("--out", required=True, help="the PNG to write")
  parser.add_argument("--image_size", type=int, default=512, choices=IMAGE_SIZES)
  parser.add_argument("--clip", type=int, default=0, help="which clip of the audio file")
  args = parser.parse_args(argv)
  if not os.path.isfile(args.file):
    parser.error(f"{args.file}: no such file")
  if os.path.splitext(args.file)[1].lower() == ".png":
    from PIL import Image

    image = np.asarray(Image.open(args.file).convert("RGB"))
    if image.shape[0] != image.shape[1]:
      parser.error(f"{args.file}: not an a2i image ({image.shape[1]} x {image.shape[0]})")
    draw(image, os.path.basename(args.file), args.out)
  else:
    if os.path.splitext(args.file)[1].lower() not in AUDIO_EXTENSIONS:
      parser.error(f"{args.file}: neither audio nor PNG (by its extension)")
    try:
      clips = clips_of(args.file)
    except AudioError as e:
      parser.error(f"{args.file}: {e}")
    if not 0 <= args.clip < len(clips):
      parser.error(f"--clip {args.clip}: {args.file} has {len(clips)} clip(s)")
    clip = clips[args.clip].samples
    image = encode_clip(clip, args.image_size, band=clips[args.clip].band).image
    y, rate = decode_green(image)      # against the clip brought to the plane's rate
    snr = si_snr(resample(clip, DEFAULT_SPEC.sample_rate, rate), y)
    draw(image, f"{os.path.basename(args.file)}, clip {args.clip}", args.out, snr)
  print(args.out)
  return 0


if __name__ == "__main__":
  sys.exit(main())
