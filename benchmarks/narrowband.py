"""The defaults on the real corpora as telephone-band recordings would give them.

    python benchmarks/narrowband.py --real REAL --data_dir D --out docs/results/narrowband.json

Each recording of REAL/<corpus>.csv (benchmarks/real_defaults.py writes
them) is decoded, resampled to 8 kHz (no content above 4 kHz, as in the
8 kHz corpora speech is often distributed as) and written as 16-bit WAV
under --work; then the corpus is built at 128 px from those files
(`pipeline.build`, the same speakers and recording names; the split
differs only where a recording's speech, measured again, falls under the
minimum), `trainer.fit` runs with its defaults on --seeds seeds
(benchmarks/compare_models.py), and the classical baselines as
benchmarks/real_defaults.py runs them (`trainer.ablate`: the log-mel TDNN,
eGeMAPS, the 94 descriptors). Each speaker is also a language and a
recording setup, and the sample rate is part of a setup: at 8 kHz that cue
is gone for every speaker. Writes --out (JSON: the commands and every run) and
prints a table beside the full-band numbers of --full (the JSON of
real_defaults.py). `--band_limit recording` builds with the descriptors
measured over the copies' own band, 0-4 kHz (docs/encoding.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # as a script
from benchmarks.measure import write_json  # noqa: E402
from benchmarks.real_defaults import CORPORA, DEFAULT_CORPORA  # noqa: E402
from benchmarks.real_protocols import command, command_once  # noqa: E402
from pipeline.spec import BAND_LIMITS  # noqa: E402

RATE = 8000


def narrowband_copy(real: str, corpus: str, work: str) -> str:
  """Writes every recording of REAL/<corpus>.csv at RATE under
  WORK/<corpus>/... and a manifest of them; returns the manifest's path.
  A recording that does not decode is left out here: the full-band build
  refuses it too."""
  import scipy.io.wavfile

  from pipeline.audio import AudioError, load_audio, resample
  from pipeline.spec import DEFAULT_SPEC

  from benchmarks.real_defaults import manifest as full_band

  manifest = os.path.join(work, f"{corpus}_8k.csv")
  with open(full_band(real, corpus)) as f:
    rows = list(csv.DictReader(f))
  kept = []
  for row in rows:
    out = os.path.join(work, os.path.splitext(row["path"])[0] + ".wav")
    if not os.path.exists(out):
      try:
        wave = load_audio(os.path.join(real, row["path"]))
      except AudioError:
        continue
      narrow = resample(np.asarray(wave, np.float64), DEFAULT_SPEC.sample_rate, RATE)
      os.makedirs(os.path.dirname(out), exist_ok=True)
      scipy.io.wavfile.write(out, RATE, (np.clip(narrow, -1, 1) * 32767).astype(np.int16))
    kept.append({"path": os.path.relpath(out, work), "speaker": row["speaker"]})
  with open(manifest, "w", newline="") as f:
    writer = csv.DictWriter(f, ["path", "speaker"])
    writer.writeheader()
    writer.writerows(kept)
  return manifest


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--real", required=True, help="the folder of klettres.sh and ktuberling.sh")
  p.add_argument("--data_dir", required=True)
  p.add_argument("--work", default="/tmp/a2i_narrowband", help="where the 8 kHz copies go")
  p.add_argument("--corpora", nargs="+", default=list(DEFAULT_CORPORA), choices=list(CORPORA))
  p.add_argument("--seeds", type=int, default=3)
  p.add_argument("--band_limit", default="working", choices=BAND_LIMITS,
                 help="pipeline.build's: \"recording\" measures the descriptors over 0-4 kHz")
  p.add_argument("--full", default="docs/results/defaults_real.json")
  p.add_argument("--out", default="docs/results/narrowband.json")
  args = p.parse_args(argv)
  out = {"command": "python benchmarks/narrowband.py " + shlex.join(
      sys.argv[1:] if argv is None else argv), "rate": RATE, "corpora": {}}
  for corpus in args.corpora:
    name = f"real_{corpus}_128_8k" + ("_own_band" if args.band_limit == "recording" else "")
    manifest = narrowband_copy(args.real, corpus, args.work)
    runs = os.path.join(args.work, f"{name}.json")
    ablation = os.path.join(args.work, f"{name}_baselines")
    band = ["--band_limit", args.band_limit] if args.band_limit != "working" else []
    # The log-mel TDNN and eGeMAPS read the audio, not the encoding: only the
    # descriptors' baseline depends on the band they were measured over.
    rows = "descriptors_logreg" if band else "logmel_cnn,egemaps_logreg,descriptors_logreg"
    done = [command("pipeline.build", "--input", manifest, "--name", name, "--image_size",
                    "128", *band, "--data_dir", args.data_dir, "--runner=DirectRunner")]
    steps = {runs: ("benchmarks.compare_models", "--data_dir", args.data_dir, "--datasets",
                    f"a2i_speakers/{name}", "--models", "cells", "--seeds",
                    *map(str, range(args.seeds)), "--out", runs),
             os.path.join(ablation, "ablation.json"): (
                 "trainer.ablate", "--dataset", f"a2i_speakers/{name}", "--data_dir",
                 args.data_dir, "--output", ablation, "--rows", rows, "--backend", "auto",
                 "--seeds", args.seeds)}
    done += [command_once(result, *argv) for result, argv in steps.items()]
    with open(runs) as f:
      row = next(iter(json.load(f)["runs"].values()))
    with open(os.path.join(ablation, "ablation.json")) as f:
      baselines = json.load(f)
    out["corpora"][corpus] = {"commands": done, "runs": row["runs"], "baselines": baselines}
    write_json(args.out, out)
  print(table(out, args.full))
  return 0


def table(out: dict, full: str | None) -> str:
  """Per corpus: test clips right per seed at 8 kHz with the default back
  end and with each of the three, beside the full-band defaults."""
  reference = {}
  if full and os.path.exists(full):
    with open(full) as f:
      reference = json.load(f)["corpora"]
  lines = ["| corpus | test clips | 8 kHz: clips right per seed (default) | mean | softmax, LDA, average (sums) | log-mel TDNN | eGeMAPS | descriptors | full band: default, mean (sum) |",
           "|---|---|---|---|---|---|---|---|---|"]
  for corpus, row in out["corpora"].items():
    n = row["runs"][0]["test_examples"]
    right = [round(r["test_accuracy"] * n) for r in row["runs"]]
    sums = [sum(round(r["backend"][f"test_accuracy_{k}"] * n) for r in row["runs"])
            for k in ("softmax", "lda", "average")]
    wide = reference.get(corpus, {}).get("runs", [])
    wide_right = [round(r["test_accuracy"] * r["test_examples"]) for r in wide]
    lines.append(f"| {corpus} | {n} | {', '.join(map(str, right))} | {np.mean(right) / n:.3f} | "
                 f"{', '.join(map(str, sums))} | "
                 + "".join(f"{row['baselines'][k]['accuracy_mean']:.3f} | "
                           if k in row["baselines"] else "as above | "
                           for k in ("logmel_cnn", "egemaps_logreg", "descriptors_logreg"))
                 + (f"{np.mean(wide_right) / wide[0]['test_examples']:.3f} ({sum(wide_right)})"
                    if wide else "") + " |")
  return "\n".join(lines)


if __name__ == "__main__":
  sys.exit(main())
