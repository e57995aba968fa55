"""The trainer's defaults on every real corpus we have, over seeds, against the
classical baselines; and the errors read.

    benchmarks/corpora/klettres.sh REAL && benchmarks/corpora/ktuberling.sh REAL
    python benchmarks/real_defaults.py --real REAL --data_dir D --runs RUNS --seeds 3

Corpora (REAL/real_speakers.csv split by source; each speaker is also a
language and a recording setup): KLettres (20 native speakers, letters and
syllables, 22-128 kHz) and KTuberling (one volunteer per language, spoken
words; its four Serbian folders hold the same files, which the build keeps
once). alsa-utils' 8 announcements are one voice: no identification corpus
on their own. `--corpora both` measures KLettres and KTuberling as one
corpus (every line of real_speakers.csv): two voices, each its own setup,
in each of 11 languages.

For each corpus, built at 128 px, split by recording 80/10/10:
1. per seed, `python -m trainer.fit --backend auto --seed S`: `cells`, its
   test accuracy with the network's softmax, with LDA, with their average
   and with the one the validation split chose (metrics.json: backend);
   the evidence for the defaults: per seed, the same command with each of
   ALTERNATIVES (one setting other than the default), its validation and
   test numbers beside the default's;
2. `python -m trainer.ablate --rows logmel_cnn,egemaps_logreg,descriptors_logreg
   --backend auto --seeds N`: the log-mel TDNN trained by the same protocol
   and back-end rule, eGeMAPS and the 94 descriptors by logistic regression;
3. the errors: every misclassified test clip of every seed's run (the
   chosen back end's answer), with its recording's duration, the clip's
   level and SNR (from its audio, cut as the build cut it), and the pair of
   speakers; beside them the same numbers over all test clips.

Writes --out (JSON: every run's metrics summary, each row, each error, the
commands) and prints Markdown tables. A run folder under --runs that
already holds a finished run of the same command (metrics.json, and
config.json with the same settings) is read, not trained again, and so is
a finished baselines folder: a study stopped half way is started again
with the same command.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # as a script
from benchmarks.measure import write_json  # noqa: E402
from benchmarks.real_protocols import command, command_once  # noqa: E402

# Each default of trainer.fit that the study tests, against the setting it
# replaced: the same command with these flags added.
ALTERNATIVES = {
    "--pooling all": ["--pooling", "all"],
    "--patience 99": ["--patience", "99"],
}

CORPORA = {"klettres": "KLettres: 20 speakers, each a language and a recording setup",
           "ktuberling": "KTuberling: one volunteer per language, each its own recording setup",
           "both": "KLettres and KTuberling as one corpus: two voices (one per corpus, each "
                   "its own setup) in each of 11 languages"}
# The corpora measured unless --corpora says otherwise; `both` is asked for by name.
DEFAULT_CORPORA = ("klettres", "ktuberling")


def manifest(real: str, corpus: str) -> str:
  """REAL/<corpus>.csv: the lines of real_speakers.csv under <corpus>/ (for
  `both`, every line: KLettres' and KTuberling's)."""
  path = os.path.join(real, f"{corpus}.csv")
  with open(os.path.join(real, "real_speakers.csv")) as f:
    lines = f.read().splitlines()
  keep = ("klettres/", "ktuberling/") if corpus == "both" else (corpus + "/",)
  with open(path, "w") as f:
    f.write("\n".join([lines[0], *[l for l in lines[1:] if l.startswith(keep)]]) + "\n")
  return path


def clip_facts(path: str, clip_index: int) -> dict:
  """Duration of the recording, level and SNR of one of its clips, cut as
  the build cut it: level = RMS over the clip's active frames (dBFS); SNR
  = the 90th minus the 10th percentile of its frame levels (dB)."""
  from pipeline.audio import load_audio
  from pipeline.clips import frame_rms_db, segment
  from pipeline.spec import DEFAULT_SPEC

  wave = load_audio(path)
  clip = segment(wave)[clip_index].samples
  levels = frame_rms_db(clip)
  return {"recording_seconds": round(len(wave) / DEFAULT_SPEC.sample_rate, 3),
          "level_dbfs": round(float(np.percentile(levels, 90)), 1),
          "snr_db": round(float(np.percentile(levels, 90) - np.percentile(levels, 10)), 1)}


def errors_of(run: str, dataset: str, data_dir: str, root: str) -> tuple[list, list]:
  """(misclassified test clips, facts of every test clip) of one run."""
  import tensorflow_datasets as tfds

  from trainer.data import CHANNELS
  from trainer.predict import load_run

  model, settings = load_run(os.path.join(run, "model.keras"))
  speakers = settings["speakers"]
  planes = CHANNELS[settings["channels"]]
  ds = tfds.builder(dataset, data_dir=data_dir).as_dataset(split="test", shuffle_files=False)
  examples = list(tfds.as_numpy(ds))
  images = np.stack([ex["image"][..., planes] for ex in examples])
  prob = np.concatenate([np.asarray(model.predict_on_batch(images[k:k + 64]))
                         for k in range(0, len(images), 64)])
  wrong, every = [], []
  for ex, p in zip(examples, prob):
    recording = ex["recording"].decode()
    facts = clip_facts(os.path.join(root, recording), int(ex["clip_index"]))
    row = {"recording": recording, "clip_index": int(ex["clip_index"]),
           "speaker": speakers[int(ex["speaker"])], **facts}
    every.append(row)
    if int(p.argmax()) != int(ex["speaker"]):
      wrong.append(dict(row, predicted=speakers[int(p.argmax())],
                        probability=round(float(p.max()), 3)))
  return wrong, every


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--real", help="the folder of klettres.sh and ktuberling.sh")
  p.add_argument("--data_dir")
  p.add_argument("--runs")
  p.add_argument("--seeds", type=int, default=3)
  p.add_argument("--corpora", nargs="+", default=list(DEFAULT_CORPORA), choices=list(CORPORA))
  p.add_argument("--no_alternatives", action="store_true",
                 help="only the default and the baselines, not ALTERNATIVES")
  p.add_argument("--out", default="docs/results/defaults_real.json")
  p.add_argument("--summarise_only", action="store_true",
                 help="recompute the rule's choices, the error summary and the table of --out")
  args = p.parse_args(argv)
  if args.summarise_only:
    with open(args.out) as f:
      return summarise(json.load(f), args.out)
  if not (args.real and args.data_dir and args.runs):
    p.error("--real, --data_dir and --runs are needed (or --summarise_only)")
  out = {"command": "python benchmarks/real_defaults.py " + shlex.join(
      sys.argv[1:] if argv is None else argv), "corpora": {}}
  if os.path.exists(args.out):
    with open(args.out) as f:
      out["corpora"] = json.load(f).get("corpora", {})
  alternatives = {} if args.no_alternatives else ALTERNATIVES
  for corpus in args.corpora:
    name = f"real_{corpus}_128"
    dataset = f"a2i_speakers/{name}"
    done = [command("pipeline.build", "--input", manifest(args.real, corpus), "--name",
                    name, "--image_size", "128", "--data_dir", args.data_dir,
                    "--runner=DirectRunner")]
    row = {"about": CORPORA[corpus], "runs": [], "errors": [], "commands": done,
           "alternatives": {k: [] for k in alternatives}}
    for seed in range(args.seeds):
      run = os.path.join(args.runs, f"{name}_seed{seed}")
      fit_args = ["--dataset", dataset, "--data_dir", args.data_dir, "--backend", "auto",
                  "--seed", str(seed)]
      done.append(fit(run, fit_args))
      m = run_summary(run)
      row["runs"].append(m)
      wrong, every = errors_of(run, dataset, args.data_dir, args.real)
      row["errors"].append({"seed": seed, "wrong": wrong})
      row["test_clips"] = every
      for alternative, flags in alternatives.items():
        other = os.path.join(args.runs, f"{name}_seed{seed}_{flags[0][2:]}_{flags[1]}")
        done.append(fit(other, fit_args + flags))
        row["alternatives"][alternative].append(run_summary(other))
    ablation = os.path.join(args.runs, f"{name}_baselines")
    done.append(command_once(os.path.join(ablation, "ablation.json"), "trainer.ablate",
                             "--dataset", dataset, "--data_dir", args.data_dir, "--output",
                             ablation, "--rows", "logmel_cnn,egemaps_logreg,descriptors_logreg",
                             "--backend", "auto", "--seeds", args.seeds))
    with open(os.path.join(ablation, "ablation.json")) as f:
      row["baselines"] = json.load(f)
    out["corpora"][corpus] = row
    write_json(args.out, out)
  return summarise(out, args.out)


def fit(run: str, fit_args: list[str]) -> str:
  """`python -m trainer.fit *fit_args --output run`, unless `run` already
  holds that run, finished (then it is read). Returns the command line."""
  argv = ["trainer.fit", *fit_args, "--output", run]
  if finished(run, fit_args):
    line = shlex.join(["python", "-m", *argv])
    print(f"$ {line}  (finished before: read)", flush=True)
    return line
  return command(*argv)


def finished(run: str, fit_args: list[str]) -> bool:
  """Does `run` hold a finished run of these flags (metrics.json, and
  config.json settings equal to every flag given, the rest the defaults)?"""
  from trainer.config import TrainConfig

  if not os.path.exists(os.path.join(run, "metrics.json")):
    return False
  with open(os.path.join(run, "config.json")) as f:
    settings = json.load(f)["settings"]
  flags = dict(zip(fit_args[::2], fit_args[1::2]))
  wanted = {k: getattr(TrainConfig(), k) for k in settings if k not in ("output", "data_dir")}
  wanted.update({k[2:]: v for k, v in flags.items() if k != "--data_dir"})
  return all(str(settings.get(k)) == str(v) for k, v in wanted.items())


def run_summary(run: str) -> dict:
  """What the study keeps of a run's metrics.json."""
  with open(os.path.join(run, "metrics.json")) as f:
    m = json.load(f)
  return {"seed": m["seed"], "test_examples": m["test_examples"], "speakers": len(m["speakers"]),
          "backend": m["backend"], "test_accuracy": m["test_accuracy"],
          "validation_accuracy": m["validation_accuracy"], "epochs_run": m["epochs_run"],
          "best_epoch": m["best_epoch"], "pooling": m["pooling"],
          "train_seconds": m["train_seconds_this_run"], "fusion": m["fusion"]}


def summarise(out: dict, path: str) -> int:
  """Adds the back-end rule's choice per run and the error summary per
  corpus to `out`, writes it to `path` and prints the table."""
  for row in out["corpora"].values():
    row["auto_rule"] = [auto_choice(r["backend"]) for r in row["runs"]]
    row["error_summary"] = error_summary(row)
  with open(path, "w") as f:
    json.dump(out, f, indent=1)
  print(table(out))
  print()
  print(alternatives_table(out))
  return 0


def auto_choice(backend: dict) -> str:
  """What `--backend auto` (trainer.heads.choose_backend) picks from a run's
  recorded validation numbers: the rule applied afresh to every run."""
  from trainer.heads import rule

  v = backend["validation"]
  if "average" not in v:        # a study under the previous rule: the choice it made
    return backend["chosen"]
  return rule({k: round(x["accuracy"] * x["clips"]) for k, x in v.items()},
              v["average"]["clips"])[0]


def error_summary(row: dict) -> dict:
  """What the misclassified test clips of a corpus have in common: their
  recordings' duration, their level and SNR against all test clips'
  (medians), the speaker pairs confused, and the clips wrong in every seed."""
  every = row["test_clips"]
  wrong = [w for e in row["errors"] for w in e["wrong"]]

  def medians(rows):
    return {k: float(np.median([r[k] for r in rows])) if rows else None
            for k in ("recording_seconds", "level_dbfs", "snr_db")}

  pairs, clips = {}, {}
  for w in wrong:
    pair = f"{w['speaker']} -> {w['predicted']}"
    pairs[pair] = pairs.get(pair, 0) + 1
    key = f"{w['recording']}#{w['clip_index']}"
    clips[key] = clips.get(key, 0) + 1
  from pipeline.spec import DEFAULT_SPEC   # the spec the corpora are built with

  def share(rows, seconds):
    return round(sum(r["recording_seconds"] < seconds for r in rows) / max(len(rows), 1), 3)

  clip = DEFAULT_SPEC.clip_seconds
  return {"errors_all_seeds": len(wrong), "test_clips": len(every),
          "median_wrong": medians(wrong), "median_all": medians(every),
          "clip_seconds": clip,
          "share_of_recordings_under_one_clip_all": share(every, clip),
          "share_of_recordings_under_one_clip_wrong": share(wrong, clip),
          "share_of_recordings_under_half_a_clip_all": share(every, clip / 2),
          "share_of_recordings_under_half_a_clip_wrong": share(wrong, clip / 2),
          "pairs": dict(sorted(pairs.items(), key=lambda kv: -kv[1])),
          "wrong_in_every_seed": sorted(k for k, n in clips.items()
                                        if n == len(row["errors"]))}


def alternatives_table(out: dict) -> str:
  """Per corpus, the defaults and each alternative: per seed, the test
  clips right with the back end the rule chose, and with the softmax, LDA
  and their average; the mean validation accuracy (the chosen back end)
  and epochs run."""
  lines = ["| corpus | settings | test clips right per seed (back end by the rule) | mean accuracy | softmax, clips right (all seeds) | LDA | average | validation accuracy (mean) | epochs run (mean) |",
           "|---|---|---|---|---|---|---|---|---|"]
  for corpus, row in out["corpora"].items():
    if "alternatives" not in row:
      continue
    for setting, runs in [("defaults", row["runs"]), *row["alternatives"].items()]:
      n = runs[0]["test_examples"]

      def clips(key):
        return [round(r["backend"][key] * n) for r in runs]

      averaged = all("test_accuracy_average" in r["backend"] for r in runs)
      auto = [round(r["test_accuracy"] * n) for r in runs]
      v = [r["backend"]["validation"][auto_choice(r["backend"])]["accuracy"] for r in runs]
      lines.append(f"| {corpus} | {setting} | {', '.join(map(str, auto))} of {n} | "
                   f"{np.mean(auto) / n:.3f} | {sum(clips('test_accuracy_softmax'))} | "
                   f"{sum(clips('test_accuracy_lda'))} | "
                   f"{sum(clips('test_accuracy_average')) if averaged else '-'} | "
                   f"{np.mean(v):.3f} | "
                   f"{np.mean([r['epochs_run'] for r in runs]):.1f} |")
  return "\n".join(lines)


def table(out: dict) -> str:
  lines = ["| corpus | speakers | test clips | softmax | LDA | average | auto (validation) | log-mel TDNN | eGeMAPS | descriptors |",
           "|---|---|---|---|---|---|---|---|---|---|"]
  for corpus, row in out["corpora"].items():
    runs = row["runs"]

    def mean(values):
      return f"{np.mean(values):.3f}" if None not in values else "-"

    b = row["baselines"]
    lines.append(" | ".join([
        f"| {corpus}", str(runs[0]["speakers"]), str(runs[0]["test_examples"]),
        mean([r["backend"]["test_accuracy_softmax"] for r in runs]),
        mean([r["backend"]["test_accuracy_lda"] for r in runs]),
        mean([r["backend"].get("test_accuracy_average") for r in runs]),
        mean([r["backend"][f"test_accuracy_{auto_choice(r['backend'])}"] for r in runs]),
        *(f"{b[k]['accuracy_mean']:.3f}" for k in ("logmel_cnn", "egemaps_logreg",
                                                    "descriptors_logreg"))]) + " |")
  return "\n".join(lines)


if __name__ == "__main__":
  sys.exit(main())
