"""Speed of `encode()` against a straightforward implementation of the paper.

    python benchmarks/encode_speed.py [--clips 40] [--image_size 512] [--out docs/performance_encode.json]

The straightforward version below is what one writes from the paper with
librosa: one librosa call per feature (each computing its own STFT), pitch by
`librosa.pyin`, the same min-max ranges. Both run on the same clips (eSpeak NG
voices, 1-4 s; plus the real human recordings of Debian's alsa-utils when
installed), one timed run each after one warm-up clip. CPU time is process
time, single-threaded (BLAS threads pinned to 1).
"""

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
  os.environ.setdefault(var, "1")

import argparse
import glob
import json
import platform
import time

import librosa
import numpy as np

from pipeline.audio import load_audio, to_working_rate
from pipeline.encode import decode_green, encode, si_snr
from pipeline.espeak import synthesize
from pipeline.spec import DEFAULT_SPEC

SENTENCES = [
    "Please call Stella.", "Ask her to bring these things with her from the store.",
    "Six spoons of fresh snow peas, five thick slabs of blue cheese.",
    "We also need a small plastic snake and a big toy frog for the kids.",
    "The boy was there when the sun rose.", "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.", "Kick the ball straight and follow through.",
]
VOICES = ["en+m1", "en+f2", "en-us+m3", "en+f4", "en+m7"]


def clips(n):
  """n speech clips of 1-4 s at 16 kHz (cut from synthesized sentences)."""
  rng = np.random.default_rng(0)
  out = []
  for path in sorted(glob.glob("/usr/share/sounds/alsa/*.wav")):
    if "Noise" not in path:
      out.append(("real", load_audio(path)[:DEFAULT_SPEC.clip_samples]))
  i = 0
  while len(out) < n:
    x, rate = synthesize(SENTENCES[i % len(SENTENCES)], VOICES[i % len(VOICES)],
                         rate=int(rng.integers(140, 200)))
    x = to_working_rate(x, rate)
    seconds = rng.uniform(1.0, 4.0)
    out.append(("espeak", x[:int(seconds * 16000)]))
    i += 1
  return out


def straightforward(x, sr, image_size):
  """The paper as written, one librosa call per feature."""
  f0, voiced, _ = librosa.pyin(x, fmin=50, fmax=500, sr=sr)
  feats = [f0[~np.isnan(f0)] if np.any(~np.isnan(f0)) else np.zeros(1),
           librosa.feature.spectral_centroid(y=x, sr=sr)[0],
           librosa.feature.spectral_bandwidth(y=x, sr=sr)[0],
           librosa.feature.spectral_rolloff(y=x, sr=sr)[0],
           librosa.feature.zero_crossing_rate(x)[0],
           *librosa.feature.mfcc(y=x, sr=sr, n_mfcc=20),
           librosa.feature.rms(y=x)[0],
           librosa.feature.spectral_flatness(y=x)[0],
           *librosa.feature.spectral_contrast(y=x, sr=sr, fmin=100),
           *librosa.feature.chroma_stft(y=x, sr=sr)]
  harmonic = librosa.effects.harmonic(x)
  hnr = 10 * np.log10(np.sum(harmonic ** 2) / max(np.sum((x - harmonic) ** 2), 1e-12))
  feats.append(np.array([hnr]))
  stats = np.array([[np.median(f), np.mean(f)] for f in feats]).ravel()
  red = np.resize(((stats - stats.min()) / (np.ptp(stats) + 1e-9) * 255).astype(np.uint8),
                  image_size * image_size).reshape(image_size, image_size)
  n = image_size * image_size
  g = np.resize(x, n)
  green = ((g - g.min()) / (np.ptp(g) + 1e-9) * 255).astype(np.uint8).reshape(image_size, -1)
  side = image_size // 7
  blue = np.zeros((image_size, image_size), np.uint8)
  for k, f in enumerate(feats[:49]):
    patch = np.interp(np.linspace(0, len(f) - 1, side * side), np.arange(len(f)), f)
    patch = ((patch - patch.min()) / (np.ptp(patch) + 1e-9) * 255).astype(np.uint8)
    r, c = divmod(k, 7)
    blue[r * side:(r + 1) * side, c * side:(c + 1) * side] = patch.reshape(side, side)
  return np.stack([red, green, blue], axis=-1)


def timed(fn, data, image_size):
  fn(data[0][1], 16000, image_size)  # warm-up: caches, numba JIT
  t0 = time.process_time()
  for _, x in data:
    fn(x, 16000, image_size)
  return time.process_time() - t0


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--clips", type=int, default=40)
  parser.add_argument("--image_size", type=int, default=512)
  parser.add_argument("--out", default="docs/performance_encode.json")
  args = parser.parse_args()
  data = clips(args.clips)
  audio_seconds = sum(len(x) for _, x in data) / 16000
  ours = timed(encode, data, args.image_size)
  ref = timed(straightforward, data, args.image_size)
  snr = {kind: [] for kind, _ in data}
  for kind, x in data:
    y, _ = decode_green(encode(x, 16000, args.image_size))
    snr[kind].append(si_snr(x, y[:len(x)]))
  result = {
      "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                 f"Python {platform.python_version()}",
      "image_size": args.image_size, "clips": len(data),
      "real_clips": sum(k == "real" for k, _ in data),
      "audio_seconds": round(audio_seconds, 2),
      "encode_cpu_seconds": round(ours, 3),
      "encode_x_realtime_per_core": round(audio_seconds / ours, 1),
      "straightforward_cpu_seconds": round(ref, 3),
      "straightforward_x_realtime_per_core": round(audio_seconds / ref, 2),
      "speedup": round(ref / ours, 1),
      "green_si_snr_db": {k: {"min": round(min(v), 2), "median": round(float(np.median(v)), 2)}
                          for k, v in snr.items()},
  }
  print(json.dumps(result, indent=2))
  with open(args.out, "w") as f:
    json.dump(result, f, indent=2)


if __name__ == "__main__":
  main()
