"""Does audio augmentation of the training recordings help the defaults?

    python benchmarks/augmented_training.py --base D/a2i_speakers/real_ktuberling_128/2.0.0 \
        --manifest REAL/ktuberling.csv --copies 2 --data_dir D --runs RUNS \
        --out docs/results/augmented_training.json

The x-vector recipes train on every recording and on copies of it with
reverberation and noise added. Here each training recording of a built
dataset (--base, whose build_report.json gives every file's split) gets
--copies such copies, drawn as `augment` says (`--kind level`: as `level`
says, the level alone), written as 16-bit WAV beside the corpus (under
<manifest's folder>/augmented/ or augmented_level/) at the recording's own
rate or the working rate, whichever is lower. The corpus is built again from
a manifest of the originals and the copies, each copy in its original's
`group`: the split is dealt by group, so every copy lands in training and
the validation and test recordings are the ones of --base, clip for clip.
Then `trainer.fit` runs with its defaults on --seeds seeds
(benchmarks/compare_models.py). Writes --out (JSON: the commands, the
augmented runs and, read from --reference when given, the runs on --base
they are compared with) and prints a table.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shlex
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # as a script
from benchmarks.measure import write_json  # noqa: E402
from benchmarks.real_protocols import command_once  # noqa: E402


def augment(x: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
  """One copy of a recording as another room and microphone would give it:
  reverberation half of the time (an exponentially decaying noise impulse
  response, RT60 0.2-0.8 s), background noise at 10-30 dB SNR (white, or
  brown-ish like hum and traffic), and a peak level of -30..-3 dBFS. Its
  pitch and tempo are the speaker's: no speed change."""
  import scipy.signal

  from pipeline.demo import at_peak, background_noise, room_response, with_noise

  x = np.asarray(x, np.float64)
  rt60 = 0.0
  if rng.random() < 0.5:
    rt60 = rng.uniform(0.2, 0.8)
    ir = room_response(sr, rt60, rng)
    x = scipy.signal.fftconvolve(x, ir / np.sqrt(np.sum(ir ** 2)), mode="full")[:len(x)]
  snr = rng.uniform(10, 30)
  noise, brown = background_noise(len(x), rng)
  peak_db = rng.uniform(-30, -3)
  x = at_peak(with_noise(x, noise, snr), peak_db)
  return x.astype(np.float32), {"rt60_seconds": round(float(rt60), 3),
                                "snr_db": round(float(snr), 2),
                                "noise": "brown" if brown else "white",
                                "peak_dbfs": round(float(peak_db), 2)}


def level(x: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
  """One copy of a recording at another level: scaled to a peak of
  -30..-3 dBFS, nothing else changed (its noise floor moves with it)."""
  from pipeline.demo import at_peak

  peak_db = rng.uniform(-30, -3)
  return (at_peak(np.asarray(x, np.float64), peak_db).astype(np.float32),
          {"peak_dbfs": round(float(peak_db), 2)})


KINDS = {"room_noise": (augment, "aug"), "level": (level, "level")}


def augmented_manifest(base: str, manifest: str, copies: int,
                       kind: str = "room_noise") -> tuple[str, int]:
  """Writes the copies of --base's training files (drawn by KINDS[kind])
  and a manifest of every file of `manifest` plus them; returns (its path,
  the copies written)."""
  import scipy.io.wavfile

  from pipeline.audio import AudioError, load_recording, resample
  from pipeline.spec import DEFAULT_SPEC

  with open(os.path.join(base, "build_report.json")) as f:
    split_of = {r["file"]: r["split"] for r in json.load(f)["files"] if r["status"] == "encoded"}
  root = os.path.dirname(os.path.abspath(manifest))
  with open(manifest) as f:
    rows = [dict(r, group=r.get("group") or r["path"]) for r in csv.DictReader(f)]
  draw, tag = KINDS[kind]
  extra = []
  folder = "augmented" if kind == "room_noise" else f"augmented_{kind}"
  for row in rows:
    if split_of.get(os.path.normpath(row["path"])) != "train":
      continue
    rels = [os.path.join(folder, os.path.splitext(row["path"])[0] + f".{k}.wav")
            for k in range(1, copies + 1)]
    missing = [(k, rel) for k, rel in enumerate(rels, 1)
               if not os.path.exists(os.path.join(root, rel))]
    if missing:   # decoded only when a copy is still to be written
      try:
        recording = load_recording(os.path.join(root, row["path"]))
      except AudioError:
        continue
      rate = min(recording.source_rate, DEFAULT_SPEC.sample_rate)
      for k, rel in missing:
        seed = int.from_bytes(hashlib.sha256(f"{row['path']}#{k}".encode()).digest()[:8], "big")
        copy, _ = draw(recording.samples, DEFAULT_SPEC.sample_rate, np.random.default_rng(seed))
        copy = resample(copy, DEFAULT_SPEC.sample_rate, rate)
        out = os.path.join(root, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        scipy.io.wavfile.write(out + ".part", int(rate),
                               (np.clip(copy, -1, 1) * 32767).astype(np.int16))
        os.replace(out + ".part", out)   # a copy is there whole or not at all
    extra += [{"path": rel, "speaker": row["speaker"], "group": row["group"]} for rel in rels]
  path = os.path.splitext(manifest)[0] + f"_{tag}{copies}.csv"
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, ["path", "speaker", "group"])
    writer.writeheader()
    writer.writerows(rows + extra)
  return path, len(extra)


def clips_right(row: dict) -> dict:
  """Per seed: test clips right with the default back end and each of the three."""
  runs = row["runs"]
  n = runs[0]["test_examples"]
  return {"test_examples": n,
          "default": [round(r["test_accuracy"] * n) for r in runs],
          **{k: [round(r["backend"][f"test_accuracy_{k}"] * n) for r in runs]
             for k in ("softmax", "lda", "average")}}


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--base", required=True, help="the built dataset's folder (its build report)")
  p.add_argument("--manifest", required=True, help="the manifest --base was built from")
  p.add_argument("--copies", type=int, default=2)
  p.add_argument("--kind", default="room_noise", choices=sorted(KINDS),
                 help="room_noise: `augment`; level: `level` (the peak level alone)")
  p.add_argument("--data_dir", required=True)
  p.add_argument("--runs", required=True, help="where the runs' JSON go")
  p.add_argument("--seeds", type=int, default=3)
  p.add_argument("--reference", help="the JSON of the default runs on --base: real_defaults.py's,"
                 " narrowband.py's or compare_models.py's")
  p.add_argument("--out", default="docs/results/augmented_training.json")
  args = p.parse_args(argv)
  argv_used = sys.argv[1:] if argv is None else argv
  base_name = os.path.basename(os.path.dirname(os.path.normpath(args.base)))
  name = f"{base_name}_{KINDS[args.kind][1]}{args.copies}"
  path, n_copies = augmented_manifest(args.base, args.manifest, args.copies, args.kind)
  runs = os.path.join(args.runs, f"{name}.json")
  done = [command_once(os.path.join(args.data_dir, "a2i_speakers", name), "pipeline.build",
                       "--input", path, "--name", name, "--image_size", "128", "--data_dir",
                       args.data_dir, "--runner=DirectRunner"),
          command_once(runs, "benchmarks.compare_models", "--data_dir", args.data_dir,
                       "--datasets", f"a2i_speakers/{name}", "--models", "cells", "--seeds",
                       *map(str, range(args.seeds)), "--out", runs)]
  with open(runs) as f:
    augmented = next(iter(json.load(f)["runs"].values()))
  with open(os.path.join(args.data_dir, "a2i_speakers", name,
                         os.path.basename(os.path.normpath(args.base)), "build_report.json")) as f:
    copies = [r for r in json.load(f)["files"] if r["file"].startswith("augmented")]
  refused = {}
  for r in copies:
    if r["status"] != "encoded":
      refused[r["reason"]] = refused.get(r["reason"], 0) + 1
  out = {}
  if os.path.exists(args.out):
    with open(args.out) as f:
      out = json.load(f)
  entry = {"command": "python benchmarks/augmented_training.py " + shlex.join(argv_used),
           "base": base_name, "commands": done, "kind": args.kind,
           "copies_per_training_recording": args.copies,
           "copies_written": n_copies, "copies_refused_by_the_build": refused,
           "augmented": clips_right(augmented),
           "augmented_runs": augmented["runs"]}
  if args.reference:
    with open(args.reference) as f:
      reference = json.load(f)
    if "corpora" in reference:   # real_defaults.py's or narrowband.py's
      row = reference["corpora"][base_name.split("_")[1]]
    else:   # compare_models.py's
      row = next(r for r in reference["runs"].values()
                 if r["dataset"].split("/")[-1] == base_name)
    entry["reference"] = clips_right(row)
    entry["reference_file"] = args.reference
    entry["reference_command"] = row.get("written_by", reference["command"])
  out[name] = entry
  write_json(args.out, out)
  print(table(out))
  return 0


def table(out: dict) -> str:
  lines = ["| dataset | test clips | copies per training recording | augmented: per seed (sum) "
           "| softmax, LDA, average (sums) | without: per seed (sum) |",
           "|---|---|---|---|---|---|"]
  for name, e in out.items():
    a, r = e["augmented"], e.get("reference")
    lines.append(f"| {e.get('base', name)} | {a['test_examples']} | "
                 f"{e['copies_per_training_recording']} ({e.get('kind', 'room_noise')}) | "
                 f"{', '.join(map(str, a['default']))} ({sum(a['default'])}) | "
                 f"{', '.join(str(sum(a[k])) for k in ('softmax', 'lda', 'average'))} | "
                 + (f"{', '.join(map(str, r['default']))} ({sum(r['default'])})" if r else "")
                 + " |")
  return "\n".join(lines)


if __name__ == "__main__":
  sys.exit(main())
