"""Draws docs/encoding_example.png: one encoded speech clip, its three planes side by side.

    python docs/make_encoding_figure.py [AUDIO_FILE]

Without a file it encodes a human recording from Debian's alsa-utils when
installed, else an eSpeak NG sentence.
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from pipeline.audio import load_audio, to_working_rate
from pipeline.clips import segment
from pipeline.encode import decode_green, encode_clip, si_snr
from pipeline.espeak import synthesize
from pipeline.spec import GRID, TRACKS, cell_size

HUMAN = "/usr/share/sounds/alsa/Front_Center.wav"


def main():
  if len(sys.argv) > 1:
    source, x = sys.argv[1], load_audio(sys.argv[1])
  elif os.path.exists(HUMAN):
    source, x = "human voice (alsa-utils Front_Center.wav)", load_audio(HUMAN)
  else:
    w, rate = synthesize("The birch canoe slid on the smooth planks.", "en+f3")
    source, x = "eSpeak NG en+f3", to_working_rate(w, rate)
  clip = segment(x)[0].samples
  image = encode_clip(clip, 512).image
  y, _ = decode_green(image)
  snr = si_snr(clip, y[:len(clip)])
  fig, axes = plt.subplots(1, 4, figsize=(20, 5.6))
  axes[0].imshow(image)
  axes[0].set_title(f"RGB, 512 x 512 ({source})", fontsize=9)
  p = cell_size(512)
  for ax, k, name, cmap in ((axes[1], 0, "red: median | mean per descriptor", "Reds"),
                            (axes[2], 1, f"green: waveform, mu-law (SI-SNR {snr:.1f} dB)",
                             "Greens"),
                            (axes[3], 2, "blue: descriptor time courses", "Blues")):
    ax.imshow(image[..., k], cmap=cmap, vmin=0, vmax=255)
    ax.set_title(name, fontsize=10)
    if k != 1:
      for i, t in enumerate(TRACKS):
        r, c = divmod(i, GRID)
        ax.text(c * p + 3, r * p + 12, t.name, fontsize=6,
                color="black" if k == 0 else "white")
  for ax in axes:
    ax.set_xticks([]), ax.set_yticks([])
  fig.tight_layout()
  out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "encoding_example.png")
  fig.savefig(out, dpi=80)
  print(out, f"SI-SNR {snr:.2f} dB")


if __name__ == "__main__":
  main()
