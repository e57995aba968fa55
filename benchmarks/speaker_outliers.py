"""Are the test clips that the models miss unlike their speaker's training recordings?

    python benchmarks/speaker_outliers.py --data_dir D --out docs/results/speaker_outliers.json

A corpus labelled by folder says who a recording is by, not that one voice
in one setup made every recording of the folder. For each real corpus this
reads, from its full-band build (real_defaults.py's, in --data_dir), every
recording's sample rate (the build report) and every clip's median f0 (its
stored descriptors: the encoder's pitch, over its voiced frames), and calls a
test recording *unlike its speaker's training recordings* when

  * its sample rate is that of fewer than 10 % of them (another setup), or
  * its median f0, in semitones, is more than 3 robust standard deviations
    (1.4826 x the median absolute deviation, at least half a semitone) from
    their median (another voice, or the same voice far from its usual
    register): the build report's pitch check (pipeline.report.judge_pitch),
    which these builds predate.

Then it counts, per model whose errors a JSON lists (each seed's misses:
real_defaults.py's `cells` at full band, narrowband_errors.py's `cells`
and log-mel TDNN at 8 kHz, where a recording keeps its name and its
original rate), how many test clips of each kind were missed. Writes --out
(JSON: the rule, every unlike test recording with its facts and misses,
the counts) and prints a table.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shlex
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # as a script
from benchmarks.measure import write_json  # noqa: E402
from benchmarks.real_defaults import CORPORA, DEFAULT_CORPORA  # noqa: E402

# The build report's own checks: the rate's, and the pitch's (its z and spread floor).
from pipeline.report import F0_ROBUST_Z as F0_Z, F0_SPREAD_FLOOR  # noqa: E402
from pipeline.report import RARE_RATE_SHARE as RATE_SHARE  # noqa: E402
from pipeline.report import pitch_profile, robust_z, semitones as _semitones  # noqa: E402


def recording_facts(data_dir: str, dataset: str, rates: dict | None = None) -> dict:
  """{recording: {speaker, split, sample_rate, f0_hz}} of a built dataset:
  the rate from its build report (or from `rates`, {name without its
  extension: rate}, for copies of the recordings), f0 the median over its
  clips of each clip's median f0 (None where no clip has a voiced frame)."""
  import tensorflow_datasets as tfds

  from pipeline.spec import TRACK_INDEX

  builder = tfds.builder(dataset, data_dir=data_dir)
  with open(os.path.join(builder.data_dir, "build_report.json")) as f:
    facts = {r["file"]: {"speaker": r["speaker"], "split": r["split"],
                         "sample_rate": r["sample_rate"], "f0_clips": []}
             for r in json.load(f)["files"] if r["status"] == "encoded"}
  if rates is not None:
    for name, row in facts.items():
      row["sample_rate"] = rates[os.path.splitext(name)[0]]
  column = 2 * TRACK_INDEX["f0"]   # descriptors: (median, mean) per track
  for split in builder.info.splits:
    ds = builder.as_dataset(split=split, shuffle_files=False,
                            decoders={"image": tfds.decode.SkipDecoding()})
    for ex in tfds.as_numpy(ds):
      f0 = float(ex["descriptors"][column])
      if np.isfinite(f0):
        facts[ex["recording"].decode()]["f0_clips"].append(f0)
  for row in facts.values():
    clips = row.pop("f0_clips")
    row["f0_hz"] = round(float(np.median(clips)), 1) if clips else None
  return facts


def unlike(facts: dict) -> dict:
  """{test recording: why it is unlike its speaker's training recordings}
  (only those that are), with the facts the rule read."""
  training = {}
  for row in facts.values():
    if row["split"] == "train":
      training.setdefault(row["speaker"], []).append(row)
  out = {}
  for name, row in sorted(facts.items()):
    if row["split"] != "test":
      continue
    mates = training.get(row["speaker"], [])
    share = sum(m["sample_rate"] == row["sample_rate"] for m in mates) / max(len(mates), 1)
    pitches = _semitones([m["f0_hz"] for m in mates if m["f0_hz"]])
    why = []
    if share < RATE_SHARE:
      why.append("sample_rate")
    z = robust_z(pitch_profile([m["f0_hz"] for m in mates]), row["f0_hz"])
    if z is not None and z > F0_Z:
      why.append("f0")
    if why:
      rates = collections.Counter(str(m["sample_rate"]) for m in mates)
      out[name] = {"speaker": row["speaker"], "why": why, "sample_rate": row["sample_rate"],
                   "training_rates": dict(rates), "f0_hz": row["f0_hz"],
                   "training_f0_hz_median": round(float(100 * 2 ** (np.median(pitches) / 12)), 1)
                   if pitches.size else None,
                   "f0_robust_z": None if z is None else round(z, 1)}
  return out


def _parent(path: str, key: tuple) -> dict:
  """The node holding the per-seed errors at `key` inside the JSON at `path`."""
  with open(path) as f:
    node = json.load(f)
  for k in key[:-1]:
    node = node[k]
  return node


def misses(path: str, key: tuple) -> tuple[dict, int, list]:
  """({recording: seeds it was missed in}, seeds, the test clips' recordings)
  of the model at `key` inside the JSON at `path`."""
  node = _parent(path, key)
  seeds = node[key[-1]]
  clips = node.get("test_clips") or node.get("clips")
  missed = {}
  for seed in seeds:
    for w in seed["wrong"]:
      name = os.path.splitext(w["recording"])[0]
      missed[name] = missed.get(name, 0) + 1
  return missed, len(seeds), [os.path.splitext(c["recording"])[0] for c in clips]


def sources(corpus: str) -> dict:
  """{dataset: [(label, the JSON, where in it the errors per seed are)]}:
  the full band's from real_defaults.py's JSON (the two corpora together:
  its `--corpora both` JSON), the 8 kHz copies' where narrowband_errors.py
  read them."""
  full, narrow = f"real_{corpus}_128", f"real_{corpus}_128_8k"
  out = {full: [("cells, full band", "docs/results/defaults_real"
                 + ("_both" if corpus == "both" else "") + ".json",
                 ("corpora", corpus, "errors"))]}
  with open("docs/results/narrowband_errors.json") as f:
    if narrow in json.load(f)["datasets"]:
      out[narrow] = [(f"{model}, 8 kHz", "docs/results/narrowband_errors.json",
                      ("datasets", narrow, key))
                     for model, key in (("cells", "cells"), ("log-mel TDNN", "logmel"))]
  return out


def study(data_dir: str, corpus: str) -> dict:
  """Per dataset of the corpus (full band, 8 kHz): its unlike test
  recordings and the misses counted; for the full band, also the build
  report's own checks, of its recordings' rates (pipeline.report.setup_checks)
  and, where the build made it, of its held-out recordings' pitch, with the
  misses among the test recordings either names."""
  import tensorflow_datasets as tfds

  from pipeline.report import PITCH_CHECK, rare_rate_records, setup_checks

  out, rates = {}, None
  for dataset, models in sources(corpus).items():
    facts = recording_facts(data_dir, f"a2i_speakers/{dataset}", rates)
    check = pitch = named = None
    if rates is None:   # the full band's report: each recording's own rate
      report = tfds.builder(f"a2i_speakers/{dataset}", data_dir=data_dir).data_dir
      with open(os.path.join(report, "build_report.json")) as f:
        whole = json.load(f)
      records, report_checks = whole["files"], whole.get("checks", {})
      rates = {os.path.splitext(r["file"])[0]: r["sample_rate"]
               for r in records if r.get("sample_rate")}
      # What the build report's check names (over every split, not only training).
      check = setup_checks(records)["recordings_at_a_rate_rare_for_their_speaker"]
      pitch = report_checks.get(PITCH_CHECK)
      # Both of the build's checks: the test recordings a run marks (trainer.report).
      named = {r["file"] for r in rare_rate_records(records)[0]} | (
          {r["file"] for r in pitch["recordings"]} if pitch else set())
    out[dataset] = one_dataset(facts, models)
    if check is not None:
      out[dataset]["build_report_check"] = check
    if pitch is not None:
      out[dataset]["build_report_pitch_check"] = {
          k: pitch[k] for k in ("count", "speakers")}
      out[dataset]["build_report_pitch_check"]["test_recordings"] = sorted(
          r["file"] for r in pitch["recordings"] if r["split"] == "test")
    if named is not None:
      out[dataset]["named_by_the_build"] = named_counts(facts, models, named)
  return out


def named_counts(facts: dict, models: list, named: set) -> dict:
  """Per model: its misses among the test clips of the recordings that the
  build report's checks name (rate or pitch; what trainer.fit scores
  apart) and among the rest."""
  stems = {os.path.splitext(n)[0] for n in named if facts.get(n, {}).get("split") == "test"}
  counts = {}
  for label, path, key in models:
    missed, seeds, clips = misses(path, key)
    n = sum(c in stems for c in clips)
    wrong = sum(v for r, v in missed.items() if r in stems)
    rest = sum(missed.values()) - wrong
    per_seed = [sum(os.path.splitext(w["recording"])[0] in stems for w in seed["wrong"])
                for seed in _parent(path, key)[key[-1]]]
    counts[label] = {"test_recordings_named": len(stems), "test_clips_named": n,
                     "missed_named": wrong, "missed_the_rest": rest,
                     "missed_named_per_seed": per_seed,
                     "accuracy_named": round(1 - wrong / (seeds * n), 4) if n else None,
                     "accuracy_the_rest": round(1 - rest / (seeds * (len(clips) - n)), 4)}
  return counts


def one_dataset(facts: dict, models: list) -> dict:
  odd = unlike(facts)
  odd_stems = {os.path.splitext(n)[0]: n for n in odd}
  counts = {}
  for label, path, key in models:
    missed, seeds, clips = misses(path, key)
    n_odd = sum(c in odd_stems for c in clips)
    wrong_odd = sum(n for r, n in missed.items() if r in odd_stems)
    wrong_all = sum(missed.values())
    counts[label] = {"source": f"{path}: {'/'.join(key)}", "seeds": seeds,
                     "test_clips": len(clips), "unlike_test_clips": n_odd,
                     "missed_unlike": wrong_odd, "missed_the_rest": wrong_all - wrong_odd,
                     "accuracy_unlike": (round(1 - wrong_odd / (seeds * n_odd), 4)
                                         if n_odd else None),
                     "accuracy_the_rest": round(1 - (wrong_all - wrong_odd)
                                                / (seeds * (len(clips) - n_odd)), 4)}
    for r, n in missed.items():
      if r in odd_stems:
        odd[odd_stems[r]].setdefault("missed_in_seeds", {})[label] = n
  return {"test_recordings": sum(r["split"] == "test" for r in facts.values()),
          "unlike": odd, "counts": counts}


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--data_dir", required=True, help="real_defaults.py's, with both full-band builds")
  p.add_argument("--corpora", nargs="+", default=list(DEFAULT_CORPORA), choices=list(CORPORA))
  p.add_argument("--out", default="docs/results/speaker_outliers.json")
  args = p.parse_args(argv)
  out = {"command": "python benchmarks/speaker_outliers.py " + shlex.join(
             sys.argv[1:] if argv is None else argv),
         "rule": {"rate_share_under": RATE_SHARE, "f0_robust_z_over": F0_Z,
                  "f0_spread_floor_semitones": F0_SPREAD_FLOOR},
         "corpora": {c: study(args.data_dir, c) for c in args.corpora}}
  write_json(args.out, out)
  print(table(out))
  return 0


HEADER = ("| corpus | errors of | test clips (unlike their speaker's training) | missed, unlike "
          "(all seeds) | missed, the rest | accuracy: unlike | the rest |\n"
          "|---|---|---|---|---|---|---|")


def table(out: dict) -> str:
  lines = [HEADER]
  for corpus, datasets in out["corpora"].items():
    for label, c in ((k, v) for row in datasets.values() for k, v in row["counts"].items()):
      lines.append(f"| {corpus} | {label} ({c['seeds']} seeds) | {c['test_clips']} "
                   f"({c['unlike_test_clips']}) | {c['missed_unlike']} | "
                   f"{c['missed_the_rest']} | {c['accuracy_unlike']:.3f} | "
                   f"{c['accuracy_the_rest']:.3f} |")
  return "\n".join(lines)


if __name__ == "__main__":
  sys.exit(main())
