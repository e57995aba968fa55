"""The 8 kHz copies' errors read: which test clips `cells` and the log-mel
TDNN miss, seed by seed, and whether the TDNN's lead comes from the voice or
from the pauses around it.

    python benchmarks/narrowband.py --real REAL --data_dir D --work W    # builds the copies
    python benchmarks/narrowband_errors.py --data_dir D --work W --runs RUNS \
        --out docs/results/narrowband_errors.json

For each dataset of benchmarks/narrowband.py and each seed:
1. `python -m trainer.fit --dataset D --seed S` (the defaults; a finished
   run under --runs is read, not trained again), and every test clip it
   misses (benchmarks.real_defaults.errors_of: the recording's duration, the
   clip's level and SNR, the speaker it was taken for);
2. the log-mel TDNN as `trainer.ablate`'s `logmel_cnn` row trains it (the
   same protocol and back-end rule), and the clips it misses;
3. the same TDNN with every frame outside the clip's speech activity
   (pipeline.clips.active_frames, the rule the encoder measures descriptors
   by) set to the padding's level: what it scores from the speech alone.
   In these corpora each speaker is also a recording setup, and a setup's
   noise floor shows in its pauses.

Writes --out (JSON: per dataset and seed, the clips each model missed, and
the facts of every test clip; the rows of a dataset not measured this time
are kept, each with the command that wrote it) and prints a table.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import shlex
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # as a script
from benchmarks.measure import write_json  # noqa: E402
from benchmarks.real_defaults import errors_of  # noqa: E402
from benchmarks.real_protocols import command_once  # noqa: E402

DATASETS = ("real_klettres_128_8k", "real_ktuberling_128_8k")
PADDING_DB = -100.0   # librosa's power_to_db of digital silence: a zero-padded clip's frames


def speech_only(mel: np.ndarray, waves: np.ndarray) -> np.ndarray:
  """Log-mel spectrograms (clips, bands, frames, 1) with each frame outside
  its clip's speech activity set to PADDING_DB. The spectrogram's frames and
  pipeline.clips.frame_rms_db's are both centred every hop: frame k of one
  is frame k of the other."""
  from pipeline.clips import active_frames, frame_rms_db

  out = mel.copy()
  for k, wave in enumerate(waves):
    active = active_frames(frame_rms_db(np.asarray(wave, np.float64)))
    n = min(len(active), out.shape[2])
    out[k, :, :n][:, ~active[:n]] = PADDING_DB
  return out


def tdnn_predictions(dataset, name: str, data_dir: str, seed: int,
                     speech: bool) -> tuple[np.ndarray, np.ndarray]:
  """(predicted, true) speaker indices of the test clips, in the dataset's
  test order, from the log-mel TDNN trained as trainer.ablate trains it."""
  from trainer import baselines, networks
  from trainer.config import TrainConfig
  from trainer.train import train

  config = TrainConfig(dataset=name, data_dir=data_dir, seed=seed, backend="auto")
  splits, _ = baselines.logmel_splits(dataset, data_dir, config.batch_size, seed,
                                      edit=speech_only if speech else None)
  result = train(dataclasses.replace(config, model=networks.LOGMEL), splits=splits, verbose=0)
  x = np.concatenate([np.asarray(b) for b, _ in splits.test])
  y = np.concatenate([np.asarray(t) for _, t in splits.test])
  return np.asarray(result.model.predict(x, verbose=0)).argmax(axis=1), y


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--data_dir", required=True)
  p.add_argument("--work", required=True, help="narrowband.py's --work: the 8 kHz copies")
  p.add_argument("--runs", default="/tmp/a2i_narrowband_runs")
  p.add_argument("--datasets", nargs="+", default=list(DATASETS))
  p.add_argument("--seeds", type=int, default=3)
  p.add_argument("--out", default="docs/results/narrowband_errors.json")
  args = p.parse_args(argv)
  from trainer.data import open_dataset

  this = "python benchmarks/narrowband_errors.py " + shlex.join(
      sys.argv[1:] if argv is None else argv)
  out = {"datasets": {}}
  if os.path.exists(args.out):  # a dataset this command does not measure keeps its rows
    with open(args.out) as f:
      out = json.load(f)
  for name in args.datasets:
    dataset = open_dataset(f"a2i_speakers/{name}", args.data_dir)
    row = {"command": this, "commands": [], "cells": [], "logmel": [], "logmel_speech_only": [],
           "clips": None}
    for seed in range(args.seeds):
      run = os.path.join(args.runs, f"{name}_seed{seed}")
      row["commands"].append(command_once(
          os.path.join(run, "metrics.json"), "trainer.fit", "--dataset", f"a2i_speakers/{name}",
          "--data_dir", args.data_dir, "--output", run, "--seed", seed))
      wrong, every = errors_of(run, f"a2i_speakers/{name}", args.data_dir, args.work)
      row["clips"] = every
      row["cells"].append({"seed": seed, "wrong": wrong})
      for key, speech in (("logmel", False), ("logmel_speech_only", True)):
        predicted, labels = tdnn_predictions(dataset, f"a2i_speakers/{name}", args.data_dir,
                                             seed, speech)
        if [dataset.speakers[int(k)] for k in labels] != [c["speaker"] for c in every]:
          raise SystemExit(f"{name}: the TDNN's test clips are not in the dataset's order")
        row[key].append({"seed": seed, "wrong": [
            dict(every[k], predicted=dataset.speakers[int(predicted[k])])
            for k in np.flatnonzero(predicted != labels)]})
      print(table({name: row}), flush=True)
    out["datasets"][name] = row
    write_json(args.out, out)
  print(table(out["datasets"]))
  return 0


def table(datasets: dict) -> str:
  """Per dataset and model: clips right per seed, and the recordings missed
  in more than one seed with the speakers they were taken for."""
  lines = ["| dataset | model | test clips right per seed | sum | missed in 2+ seeds (taken for) |",
           "|---|---|---|---|---|"]
  for name, row in datasets.items():
    n = len(row["clips"] or [])
    for key in ("cells", "logmel", "logmel_speech_only"):
      right = [n - len(r["wrong"]) for r in row[key]]
      taken = collections.defaultdict(list)
      for r in row[key]:
        for w in r["wrong"]:
          taken[w["recording"]].append(w["predicted"])
      repeated = ", ".join(
          f"{rec} x{len(who)} ({', '.join(sorted(set(who)))})"
          for rec, who in sorted(taken.items(), key=lambda kv: (-len(kv[1]), kv[0]))
          if len(who) > 1)
      lines.append(f"| {name} | {key} | {', '.join(map(str, right))} | {sum(right)} | "
                   f"{repeated or 'none'} |")
  return "\n".join(lines)


if __name__ == "__main__":
  sys.exit(main())
