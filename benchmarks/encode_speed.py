"""Speed of `encode()` per set of speech, per stage, against a straightforward implementation.

    benchmarks/corpora/klettres.sh /data/real          # once: KLettres + alsa-utils
    python benchmarks/encode_speed.py --real /data/real [--image_size 512] \
        [--out docs/performance_encode.json]

Sets, each reported on its own (x real time = seconds of audio / CPU seconds
of `encode(waveform, its own sample rate)`, one thread, one warm-up call):

* klettres: the first 4.096 s of every KLettres recording (22.05-128 kHz,
  0.2-7.6 s: mostly single letters, so per-clip fixed costs weigh most);
* alsa-utils: the 8 announcements (48 kHz, studio);
* telephone_noisy: KLettres words of one speaker strung to 4.096 s,
  resampled to 8 kHz with steady noise 25 dB under the speech (every frame
  active: the worst case for the pitch path);
* espeak: synthetic sentences of 1-4 s from 5 eSpeak NG voices (16 kHz).

The process is set up as the pipeline's workers set theirs up
(pipeline.bulk: one BLAS thread, freed memory reused). Per stage: CPU time inside resampling to the working rate, pitch (candidates
and path), harmonicity, the other descriptors, and the red, green and blue
planes. The straightforward version is the paper written with librosa (one
call per feature, each with its own STFT; pitch by `librosa.pyin`; HNR from
harmonic/percussive separation), timed on the espeak set.
"""

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
  os.environ.setdefault(var, "1")

import argparse
import collections
import functools
import glob
import json
import sys
import time

import librosa
import numpy as np
import soundfile as sf

from pipeline import audio, encode as encode_module, features
from pipeline.audio import AudioError, to_working_rate
try:
  from pipeline.bulk import prepare_process
except ImportError:  # a checkout from before pipeline.bulk (measuring an older encoder)
  def prepare_process():
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
from pipeline.encode import decode_green, encode, si_snr
from pipeline.espeak import synthesize
from pipeline.spec import DEFAULT_SPEC
# Appended, after the imports above: the encoder measured stays the one on the path
# (PYTHONPATH=OLD_CHECKOUT measures an older one); only benchmarks.measure comes from here.
sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks.measure
from benchmarks.measure import machine  # noqa: E402

SENTENCES = [
    "Please call Stella.", "Ask her to bring these things with her from the store.",
    "Six spoons of fresh snow peas, five thick slabs of blue cheese.",
    "We also need a small plastic snake and a big toy frog for the kids.",
    "The boy was there when the sun rose.", "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.", "Kick the ball straight and follow through.",
]
VOICES = ["en+m1", "en+f2", "en-us+m3", "en+f4", "en+m7"]


def read(path, seconds=DEFAULT_SPEC.clip_seconds):
  """(mono float32, rate) of a file's first `seconds`."""
  x, rate = sf.read(path, dtype="float32", always_2d=True)
  return x[:int(seconds * rate)].mean(axis=1), rate


def klettres(root):
  return [read(p) for p in sorted(glob.glob(os.path.join(root, "klettres", "*", "*", "*.ogg")))]


def alsa(root):
  return [read(p) for p in sorted(glob.glob(os.path.join(root, "alsa-utils", "*", "*.wav")))]


def telephone_noisy(root, n=40):
  """Words of one KLettres speaker per clip, 8 kHz, steady noise at -25 dB re speech rms."""
  rng = np.random.default_rng(0)
  out = []
  speakers = sorted(glob.glob(os.path.join(root, "klettres", "*")))
  for i in range(n):
    paths = sorted(glob.glob(os.path.join(speakers[i % len(speakers)], "*", "*.ogg")))
    pieces, total = [], 0
    for k in rng.permutation(len(paths)):
      x, rate = read(paths[k])
      y = to_working_rate(x, rate)
      pieces.append(y)
      total += len(y)
      if total >= DEFAULT_SPEC.clip_samples:
        break
    x = audio.resample(np.concatenate(pieces)[:DEFAULT_SPEC.clip_samples], 16000, 8000)
    rms = np.sqrt(np.mean(x ** 2))
    out.append(((x + rng.normal(0, rms * 10 ** (-25 / 20), len(x))).astype(np.float32), 8000))
  return out


def espeak(n=32):
  rng = np.random.default_rng(0)
  out = []
  for i in range(n):
    x, rate = synthesize(SENTENCES[i % len(SENTENCES)], VOICES[i % len(VOICES)],
                         rate=int(rng.integers(140, 200)))
    out.append((x[:int(rng.uniform(1.0, 4.0) * rate)].astype(np.float32), rate))
  return out


class Stages:
  """CPU time spent inside named functions of the encoder, by wrapping them."""

  PLACES = {"resample to 16 kHz": (audio, "resample"), "pitch": (features, "pitch"),
            "pitch_and_hnr": (features, "pitch_and_hnr"),     # spec 1.0.0's one function
            "harmonicity": (features, "harmonicity"), "describe": (encode_module, "describe"),
            "red plane": (encode_module.planes, "red_plane"),
            "green plane": (encode_module.planes, "green_plane"),
            "blue plane": (encode_module.planes, "blue_plane")}

  def __init__(self):
    self.seconds = collections.Counter()
    for name, (module, attr) in self.PLACES.items():
      if hasattr(module, attr):   # older encoders have fewer named stages
        setattr(module, attr, self._timed(name, getattr(module, attr)))

  def _timed(self, name, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
      t0 = time.process_time()
      try:
        return fn(*args, **kwargs)
      finally:
        self.seconds[name] += time.process_time() - t0
    return wrapper

  def report(self, clips: int) -> dict:
    ms = {k: 1000 * v / clips for k, v in self.seconds.items()}
    ms["other descriptors"] = ms.pop("describe", 0) - ms.get("pitch", 0) - ms.get("harmonicity", 0)
    if "pitch_and_hnr" in ms:
      ms["other descriptors"] -= ms["pitch_and_hnr"]
    return {k: round(v, 3) for k, v in ms.items()}


def run_set(data, image_size, stages: Stages | None = None, passes: int = 3,
            min_seconds: float = 4.0) -> dict:
  """The fastest of at least `passes` runs over the set, and of as many as
  take `min_seconds` of CPU in all (this machine's neighbours make single
  runs vary by up to 3x; a set of a few short clips takes tens of ms a run,
  so it gets more runs). Refused clips (too little speech) count as
  processed audio: the encoder analysed them to refuse them."""
  encode(*data[0], image_size=image_size)  # warm-up: caches
  best, spent, runs = None, 0.0, 0
  while runs < passes or spent < min_seconds:
    if stages:
      stages.seconds.clear()
    refused = 0
    t0 = time.process_time()
    for x, rate in data:
      try:
        encode(x, rate, image_size=image_size)
      except AudioError:
        refused += 1
    cpu = time.process_time() - t0
    spent, runs = spent + cpu, runs + 1
    if best is None or cpu < best[0]:
      best = cpu, refused, stages.report(len(data)) if stages else None
  cpu, refused, by_stage = best
  seconds = sum(len(x) / rate for x, rate in data)
  out = {"clips": len(data), "refused_as_too_short_or_silent": refused,
         "audio_seconds": round(seconds, 2), "mean_clip_seconds": round(seconds / len(data), 3),
         "cpu_seconds": round(cpu, 3), "ms_per_clip": round(1000 * cpu / len(data), 3),
         "x_realtime_per_core": round(seconds / cpu, 1), "runs": runs}
  if by_stage:
    out["ms_per_clip_by_stage"] = by_stage
  return out


def _zero_crossing_rate(x, frame=2048, hop=512):
  """librosa.feature.zero_crossing_rate's definition (its numba kernel crashes
  with numba 0.68 on numpy 2.4)."""
  frames = librosa.util.frame(np.pad(x, frame // 2, mode="edge"), frame_length=frame,
                              hop_length=hop)
  return np.mean(np.abs(np.diff(np.signbit(frames), axis=0)), axis=0)


def straightforward(x, sr, image_size):
  """The paper as written, one librosa call per feature."""
  f0, voiced, _ = librosa.pyin(x, fmin=50, fmax=500, sr=sr)
  feats = [f0[~np.isnan(f0)] if np.any(~np.isnan(f0)) else np.zeros(1),
           librosa.feature.spectral_centroid(y=x, sr=sr)[0],
           librosa.feature.spectral_bandwidth(y=x, sr=sr)[0],
           librosa.feature.spectral_rolloff(y=x, sr=sr)[0],
           _zero_crossing_rate(x),
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


def main(argv=None):
  prepare_process()   # as every Beam worker and the encode CLI run the encoder
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--real", required=True,
                      help="folder written by benchmarks/corpora/klettres.sh")
  parser.add_argument("--image_size", type=int, default=512)
  parser.add_argument("--out", default="docs/performance_encode.json")
  args = parser.parse_args(argv)
  if not os.path.isdir(os.path.join(args.real, "klettres")):
    parser.error(f"--real {args.real}: no klettres/ folder (run benchmarks/corpora/klettres.sh)")
  sets = {"klettres": klettres(args.real), "alsa-utils": alsa(args.real),
          "telephone_noisy": telephone_noisy(args.real), "espeak": espeak()}
  stages = Stages()
  result = {
      "machine": machine(),
      "command": "python benchmarks/encode_speed.py " + " ".join(
          sys.argv[1:] if argv is None else argv),
      "image_size": args.image_size, "target_x_realtime_per_core": 300,
      "sets": {name: run_set(data, args.image_size, stages) for name, data in sets.items()},
  }
  # Totals without the stage wrappers' overhead, in one more pass.
  for name, data in sets.items():
    result["sets"][name]["x_realtime_per_core_unwrapped"] = run_set(
        data, args.image_size)["x_realtime_per_core"]
  espeak_16k = [(to_working_rate(x, rate), 16000) for x, rate in sets["espeak"]]
  t0 = time.process_time()
  for x, rate in espeak_16k:
    straightforward(x, rate, args.image_size)
  ref = time.process_time() - t0
  ours = run_set(espeak_16k, args.image_size)["cpu_seconds"]
  result["straightforward_on_espeak"] = {"cpu_seconds": round(ref, 3),
                                         "encode_cpu_seconds": round(ours, 3),
                                         "speedup": round(ref / ours, 1)}
  snr = {}
  for name in ("alsa-utils", "espeak"):
    values = []
    for x, rate in sets[name]:
      x16 = to_working_rate(x, rate)
      y, _ = decode_green(encode(x16, 16000, args.image_size))
      values.append(si_snr(x16, y[:len(x16)]))
    snr[name] = {"min": round(min(values), 2), "median": round(float(np.median(values)), 2)}
  result["green_si_snr_db"] = snr
  print(json.dumps(result, indent=1))
  with open(args.out, "w") as f:
    json.dump(result, f, indent=1)


if __name__ == "__main__":
  main()
