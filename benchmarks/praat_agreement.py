"""Pitch, voicing and HNR of the encoder against Praat, file by file, on real speech.

    benchmarks/corpora/klettres.sh /data/real      # once: KLettres + alsa-utils
    python benchmarks/praat_agreement.py /data/real/klettres /data/real/alsa-utils \
        --out docs/results/praat_agreement.json

Praat (through praat-parselmouth) is the field's reference: `To Pitch (ac)`
75-600 Hz and `To Harmonicity (cc)`, both every 10 ms, run on the same 16 kHz
waveform the encoder sees. Per file: f0 median over voiced frames, HNR mean
over voiced frames, each side with its own voicing decision (as a reviewer
compares descriptors), and the frame-level voicing agreement.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
  os.environ.setdefault(_var, "1")

import argparse
import json
import sys
import time

import numpy as np

from pipeline.audio import AudioError, load_audio
from pipeline.corpus import list_corpus
from pipeline.features import describe
from pipeline.spec import DEFAULT_SPEC, TRACK_INDEX
sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks.measure
from benchmarks.measure import machine  # noqa: E402

PRAAT_FLOOR, PRAAT_CEILING = 75.0, 600.0


def ours(x: np.ndarray, spec=DEFAULT_SPEC):
  """(frame times s, f0 Hz or NaN, HNR dB or NaN) of a whole recording,
  described clip by clip as the encoder does."""
  times, f0, hnr = [], [], []
  for start in range(0, len(x), spec.clip_samples):
    chunk = x[start:start + spec.clip_samples]
    tracks = describe(chunk, spec).tracks
    n = 1 + len(chunk) // spec.hop_length
    times.append((start + np.arange(n) * spec.hop_length) / spec.sample_rate)
    f0.append(tracks[TRACK_INDEX["f0"], :n])
    hnr.append(tracks[TRACK_INDEX["hnr"], :n])
  return np.concatenate(times), np.concatenate(f0), np.concatenate(hnr)


def praat(x: np.ndarray, rate: int):
  """(frame times s, f0 Hz or NaN, HNR dB or NaN) by Praat's standard commands."""
  import parselmouth

  sound = parselmouth.Sound(x.astype(np.float64), sampling_frequency=rate)
  pitch = sound.to_pitch_ac(time_step=0.01, pitch_floor=PRAAT_FLOOR,
                            pitch_ceiling=PRAAT_CEILING)
  f0 = pitch.selected_array["frequency"]
  harmonicity = sound.to_harmonicity_cc(time_step=0.01, minimum_pitch=PRAAT_FLOOR)
  hnr, hnr_times = harmonicity.values[0], harmonicity.xs()
  # The two analyses frame the sound differently: each pitch frame takes the
  # nearest harmonicity frame (interpolating would blend in the -200 dB that
  # marks Praat's unvoiced frames).
  nearest = np.clip(np.rint((pitch.xs() - hnr_times[0]) / 0.01).astype(int), 0, len(hnr) - 1)
  hnr_at = hnr[nearest]
  return (pitch.xs(), np.where(f0 > 0, f0, np.nan),
          np.where((f0 > 0) & (hnr_at > -199), hnr_at, np.nan))


def compare_file(x: np.ndarray, rate: int = DEFAULT_SPEC.sample_rate) -> dict:
  t_ours, f0_ours, hnr_ours = ours(x)
  t_praat, f0_praat, hnr_praat = praat(x, rate)
  # Praat's frame nearest to each of ours (both every 10 ms, offset differs).
  nearest = np.clip(np.searchsorted(t_praat, t_ours), 1, max(len(t_praat) - 1, 1))
  if len(t_praat) > 1:
    left_closer = np.abs(t_praat[nearest - 1] - t_ours) < np.abs(t_praat[nearest] - t_ours)
    nearest = np.where(left_closer, nearest - 1, nearest)
    close = np.abs(t_praat[nearest] - t_ours) <= 0.006
  else:
    nearest, close = np.zeros(len(t_ours), int), np.zeros(len(t_ours), bool)
  v_ours = ~np.isnan(f0_ours) & close
  v_praat = np.zeros(len(t_ours), bool)
  v_praat[close] = ~np.isnan(f0_praat[nearest[close]])
  both = v_ours & v_praat
  ratio_frames = f0_ours[both] / f0_praat[nearest[both]]

  def stat(fn, v):
    v = v[~np.isnan(v)]
    return round(float(fn(v)), 3) if v.size else None

  return {
      "seconds": round(len(x) / rate, 3),
      "f0_median_ours": stat(np.median, f0_ours), "f0_median_praat": stat(np.median, f0_praat),
      "hnr_mean_ours": stat(np.mean, hnr_ours), "hnr_mean_praat": stat(np.mean, hnr_praat),
      "frames": int(close.sum()), "voiced_ours": int(v_ours.sum()),
      "voiced_praat": int(v_praat.sum()), "voiced_both": int(both.sum()),
      "frames_f0_within_5pct": int((np.abs(ratio_frames - 1) <= 0.05).sum()),
  }


def telephone_band(x: np.ndarray, rate: int = DEFAULT_SPEC.sample_rate) -> np.ndarray:
  """300-3400 Hz, as a telephone line passes speech: low voices lose their fundamental."""
  import scipy.signal

  sos = scipy.signal.butter(6, [300, 3400], btype="band", fs=rate, output="sos")
  return scipy.signal.sosfilt(sos, x).astype(np.float32)


def telephone_row(x: np.ndarray, rate: int = DEFAULT_SPEC.sample_rate) -> dict:
  """f0 medians of the encoder and of Praat on the telephone-band version,
  each against Praat's on the full-band recording (the truth both chase)."""
  _, truth, _ = praat(x, rate)
  y = telephone_band(x, rate)
  _, f0_ours, _ = ours(y)
  _, f0_praat, _ = praat(y, rate)
  median = lambda v: round(float(np.nanmedian(v)), 3) if (~np.isnan(v)).any() else None
  return {"truth": median(truth), "ours": median(f0_ours), "praat": median(f0_praat)}


def summarise_telephone(rows: list[dict]) -> dict:
  out = {}
  for who in ("ours", "praat"):
    ratios = np.array([r[who] / r["truth"] for r in rows if r[who] and r["truth"]])
    out[who] = {"files": len(ratios),
                "f0_within_5pct_of_full_band_praat": round(float(np.mean(
                    np.abs(ratios - 1) <= 0.05)), 4),
                "octave_errors": round(float(np.mean([octave_error(q) for q in ratios])), 4)}
  return out


def octave_error(ratio: float) -> bool:
  return abs(abs(np.log2(ratio)) - 1) < 0.25


def summarise(rows: list[dict]) -> dict:
  """The issue's per-file measures, over files where both sides found a voice."""
  f0 = [(r["f0_median_ours"], r["f0_median_praat"]) for r in rows
        if r["f0_median_ours"] and r["f0_median_praat"]]
  ratios = np.array([a / b for a, b in f0])
  hnr = np.array([(r["hnr_mean_ours"], r["hnr_mean_praat"]) for r in rows
                  if r["hnr_mean_ours"] is not None and r["hnr_mean_praat"] is not None])
  vo, vp, vb = (sum(r[k] for r in rows) for k in ("voiced_ours", "voiced_praat", "voiced_both"))
  return {
      "files": len(rows),
      "files_voiced_both": len(f0),
      "files_voiced_only_ours": sum(1 for r in rows if r["f0_median_ours"]
                                    and not r["f0_median_praat"]),
      "files_voiced_only_praat": sum(1 for r in rows if r["f0_median_praat"]
                                     and not r["f0_median_ours"]),
      "f0_within_5pct": round(float(np.mean(np.abs(ratios - 1) <= 0.05)), 4) if f0 else None,
      "octave_errors": round(float(np.mean([octave_error(q) for q in ratios])), 4) if f0 else None,
      "hnr_mean_abs_diff_db": round(float(np.mean(np.abs(hnr[:, 0] - hnr[:, 1]))), 3)
      if len(hnr) else None,
      "hnr_pearson_r": round(float(np.corrcoef(hnr[:, 0], hnr[:, 1])[0, 1]), 4)
      if len(hnr) > 2 else None,
      "voicing_recall": round(vb / vp, 4) if vp else None,      # of Praat's voiced frames
      "voicing_precision": round(vb / vo, 4) if vo else None,   # of ours
      "frame_f0_within_5pct": round(sum(r["frames_f0_within_5pct"] for r in rows) / vb, 4)
      if vb else None,
  }


def _code_version() -> str:
  """The commit of the encoder measured (+ '-dirty' with uncommitted changes)."""
  import subprocess

  import pipeline

  where = os.path.dirname(os.path.dirname(os.path.abspath(pipeline.__file__)))
  try:
    rev = subprocess.run(["git", "-C", where, "describe", "--always", "--dirty"],
                         capture_output=True, text=True, check=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    rev = "unknown"
  return f"{rev} ({where})"


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("corpora", nargs="+", help="corpus folders (one speaker folder per voice)")
  p.add_argument("--out", help="JSON to write (default: print the summary only)")
  p.add_argument("--limit", type=int, default=0, help="at most this many files per corpus")
  p.add_argument("--telephone", action="store_true",
                 help="also compare f0 on a 300-3400 Hz version with full-band Praat")
  args = p.parse_args(argv)
  result = {"machine": machine(),
            "command": "python benchmarks/praat_agreement.py " + " ".join(
                sys.argv[1:] if argv is None else argv),
            "reference": f"Praat To Pitch (ac) {PRAAT_FLOOR:g}-{PRAAT_CEILING:g} Hz, "
                         "To Harmonicity (cc), 10 ms steps, on the 16 kHz working waveform",
            "code": _code_version(), "corpora": {}}
  for root in args.corpora:
    _, files = list_corpus(os.path.abspath(root))
    files = [f for f in files if f.status == "audio"]
    if args.limit:
      files = files[::max(1, len(files) // args.limit)][:args.limit]
    rows, phone, started = [], [], time.time()
    for f in files:
      try:
        x = load_audio(f.path)
      except AudioError as e:
        print(f"  {f.relpath}: {e}", file=sys.stderr)
        continue
      rows.append(dict(compare_file(x), file=f.relpath, speaker=f.speaker))
      if args.telephone:
        phone.append(dict(telephone_row(x), file=f.relpath))
    by_speaker = {s: summarise([r for r in rows if r["speaker"] == s])
                  for s in sorted({r["speaker"] for r in rows})}
    name = os.path.basename(os.path.normpath(root))
    result["corpora"][name] = {"summary": summarise(rows), "by_speaker": by_speaker,
                               "files": rows}
    print(f"{name}: {len(rows)} files in {time.time() - started:.0f} s")
    print(json.dumps(summarise(rows), indent=1))
    if phone:
      result["corpora"][name]["telephone_band"] = {"summary": summarise_telephone(phone),
                                                   "files": phone}
      print("telephone band:", json.dumps(summarise_telephone(phone)))
  if args.out:
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
      json.dump(result, f, separators=(",", ":"))
  return 0


if __name__ == "__main__":
  sys.exit(main())
