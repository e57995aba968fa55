"""How fast is each container decoded? pipeline.audio.load_audio per audio second.

    python benchmarks/decode_speed.py --out docs/performance_decode.json

The same speech (--seconds of eSpeak NG voices at 16 kHz, or the files under
--real) stored as 16-bit WAV, FLAC, AAC in MP4 (.m4a, as VoxCeleb2 ships
it) and Opus in WebM, each decoded by `load_audio` (decode, mix to mono,
resample to 16 kHz, checks) in this one process, one BLAS thread, repeated
until --cpu_seconds of CPU time: audio seconds per CPU second, i.e. times
real time per core.
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import soundfile as sf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.measure import machine  # noqa: E402
from pipeline.audio import load_audio, to_working_rate  # noqa: E402
from pipeline.bulk import prepare_process  # noqa: E402
from tests.helpers import write_compressed  # noqa: E402

FORMATS = {  # name -> (file suffix, how it is written)
    "wav (16-bit PCM)": (".wav", lambda p, x, sr: sf.write(p, x, sr, subtype="PCM_16")),
    "flac": (".flac", lambda p, x, sr: sf.write(p, x, sr, subtype="PCM_16")),
    "m4a (AAC, VoxCeleb2's format)": (".m4a", lambda p, x, sr: write_compressed(
        __import__("pathlib").Path(p), x, sr, "aac", "mp4")),
    "webm (Opus, 48 kHz)": (".webm", lambda p, x, sr: write_compressed(
        __import__("pathlib").Path(p), to_48k(x, sr), 48000, "libopus", "webm")),
}


def to_48k(x, sr):
  from pipeline.audio import resample

  return resample(np.asarray(x, np.float32), sr, 48000)


def speech(seconds: float, real: str | None) -> np.ndarray:
  """About `seconds` of 16 kHz speech: real files when given, else eSpeak NG voices."""
  parts, total = [], 0
  if real:
    names = sorted(os.path.join(d, f) for d, _, fs in os.walk(real) for f in fs
                   if f.lower().endswith((".ogg", ".wav", ".flac")))
    for name in names:
      parts.append(load_audio(name))
      total += len(parts[-1])
      if total >= seconds * 16000:
        break
  else:
    from pipeline.espeak import synthesize

    k = 0
    while total < seconds * 16000:
      x, sr = synthesize(f"Sentence number {k} of the decoding benchmark, read at an even pace.",
                         ("en+f3", "en+m3", "en-us+m1")[k % 3], rate=160, pitch=30 + 10 * (k % 5))
      parts.append(to_working_rate(x, sr))
      total += len(parts[-1])
      k += 1
  return np.concatenate(parts)[:int(seconds * 16000)]


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--seconds", type=float, default=60.0, help="audio per file")
  p.add_argument("--real", help="a folder of real speech (.ogg/.wav/.flac) to use instead")
  p.add_argument("--cpu_seconds", type=float, default=3.0, help="CPU time per format")
  p.add_argument("--out", default="docs/performance_decode.json")
  args = p.parse_args(argv)
  prepare_process()
  x = speech(args.seconds, args.real)
  audio_seconds = len(x) / 16000
  folder = tempfile.mkdtemp(prefix="a2i_decode_")
  rows = {}
  for name, (suffix, write) in FORMATS.items():
    path = os.path.join(folder, "speech" + suffix)
    write(path, x, 16000)
    load_audio(path)                                   # first call: imports, caches
    runs, cpu = 0, 0.0
    while cpu < args.cpu_seconds:
      t0 = time.process_time()
      load_audio(path)
      cpu += time.process_time() - t0
      runs += 1
    rows[name] = {"x_real_time_per_core": round(runs * audio_seconds / cpu, 1),
                  "ms_per_audio_second": round(1000 * cpu / (runs * audio_seconds), 3),
                  "bytes_per_audio_second": int(os.path.getsize(path) / audio_seconds),
                  "decodes": runs}
    print(f"{name:32} {rows[name]['x_real_time_per_core']:8.1f}x real time per core "
          f"({rows[name]['bytes_per_audio_second']} bytes per audio second)", flush=True)
  result = {"command": "python benchmarks/decode_speed.py " + " ".join(
                sys.argv[1:] if argv is None else argv),
            "machine": machine(), "audio_seconds_per_file": round(audio_seconds, 2),
            "source": args.real or "eSpeak NG voices (pipeline.espeak)", "formats": rows}
  with open(args.out, "w") as f:
    json.dump(result, f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
