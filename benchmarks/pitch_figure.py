"""Draws docs/pitch_example.png: one real clip's f0 track, the encoder's and Praat's.

    python benchmarks/pitch_figure.py [--real /data/real] [--file RELPATH]

The clip (default: a KLettres recording with audible background noise
between its words, from the folder benchmarks/corpora/klettres.sh writes)
is shown with its frame levels and the activity threshold, the encoder's f0
and Praat's (To Pitch (ac), 75-600 Hz). The numbers behind the plot go to
docs/results/pitch_example.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # as a script
from benchmarks.praat_agreement import ours, praat  # noqa: E402
from pipeline.audio import load_audio
from pipeline.clips import active_frames, frame_rms_db
from pipeline.spec import DEFAULT_SPEC

DEFAULT_FILE = "klettres/hu/syllab/03-ber.ogg"


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--real", default=os.path.expanduser("~/.cache/a2i/real_speech"),
                 help="folder written by benchmarks/corpora/klettres.sh")
  p.add_argument("--file", default=DEFAULT_FILE, help="recording, relative to --real")
  p.add_argument("--out", default="docs/pitch_example.png")
  p.add_argument("--json", default="docs/results/pitch_example.json")
  args = p.parse_args(argv)
  path = os.path.join(args.real, args.file)
  if not os.path.exists(path):
    p.error(f"{path}: not found (run benchmarks/corpora/klettres.sh {args.real})")
  x = load_audio(path)[:DEFAULT_SPEC.clip_samples]
  level = frame_rms_db(x)
  active = active_frames(level)
  t_ours, f0_ours, _ = ours(x)
  t_praat, f0_praat, _ = praat(x, DEFAULT_SPEC.sample_rate)
  threshold = float(level[active].min()) if active.any() else None

  fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5), sharex=True,
                                    gridspec_kw={"height_ratios": [1, 1.4]})
  frames_t = np.arange(len(level)) * DEFAULT_SPEC.hop_length / DEFAULT_SPEC.sample_rate
  top.plot(frames_t, level, color="0.3", lw=1, label="frame level (dBFS)")
  top.fill_between(frames_t, -120, level, where=active, color="tab:green", alpha=0.25,
                   label="active")
  top.set_ylim(max(-100, float(level.min()) - 5), float(level.max()) + 5)
  top.set_ylabel("dBFS")
  top.legend(loc="lower right", fontsize=8)
  bottom.plot(t_praat, f0_praat, "o", ms=4, mfc="none", color="tab:orange",
              label="Praat To Pitch (ac), 75-600 Hz")
  bottom.plot(t_ours, f0_ours, ".", ms=4, color="tab:blue", label="a2i encoder")
  bottom.set_yscale("log")
  bottom.set_ylim(70, 650)
  bottom.set_yticks([75, 100, 150, 200, 300, 400, 600])
  bottom.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
  bottom.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
  bottom.set_ylabel("f0 (Hz)")
  bottom.set_xlabel("time (s)")
  bottom.legend(loc="upper right", fontsize=8)
  fig.suptitle(f"{args.file} (KLettres: speaker = language = recording setup)", fontsize=9)
  fig.tight_layout()
  fig.savefig(args.out, dpi=110)

  def listed(v):
    return [None if np.isnan(a) else round(float(a), 2) for a in v]

  os.makedirs(os.path.dirname(args.json), exist_ok=True)
  with open(args.json, "w") as f:
    json.dump({"command": "python benchmarks/pitch_figure.py " + " ".join(
                   sys.argv[1:] if argv is None else argv),
               "file": args.file, "active_threshold_dbfs": threshold,
               "frames": {"time_s": listed(frames_t), "level_dbfs": listed(level),
                          "active": active.tolist()},
               "ours": {"time_s": listed(t_ours), "f0_hz": listed(f0_ours)},
               "praat": {"time_s": listed(t_praat), "f0_hz": listed(f0_praat)}}, f)
  print(f"wrote {args.out} and {args.json}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
