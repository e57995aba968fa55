"""The README's training commands with their defaults: time, memory, accuracy.

    python benchmarks/fit_defaults.py [--data_dir /data/tfds] [--out docs/training_defaults.json]

Builds what is missing (the 512 px demo; voices20 at 128 px), then runs
`python -m trainer.fit` as a user would (no flag but --data_dir and
--dataset) and measures wall time, peak RSS of the whole process tree and
the run's own metrics. Targets: the demo in <= 10 min with test accuracy
>= 0.99 and <= 4 GB; voices20 at 128 px >= 0.95 in <= 15 min.

For the demo's model it also records what `trainer.predict` answers,
closed-set and with `--threshold auto`, for a new sentence by a known voice,
voices it never heard (another eSpeak NG voice; with --real, a human one)
and things that are no voice (a 0.5 s tone, 4 s of white noise).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # as a script
from benchmarks.measure import machine, run_measured  # noqa: E402

RUNS = {
    "demo, 512 px": ("a2i_speakers", ["--runner=DirectRunner"]),
    "voices20, 128 px": ("a2i_speakers/voices20_128",
                         ["--demo", "voices20", "--image_size", "128", "--runner=DirectRunner"]),
}


def open_set_answers(run: str, real: str | None) -> dict:
  """file kind -> predict's answer without and with --threshold auto."""
  import glob

  import numpy as np
  import soundfile as sf

  from pipeline.espeak import synthesize

  folder = tempfile.mkdtemp(prefix="open_set_")
  text = "A sentence this model never heard, read at an ordinary pace by the speaker."
  files = {"aria, new sentence (known voice)": synthesize(text, "en-us+f4", pitch=55),
           "rachid, new sentence (known voice)": synthesize(text, "en+m3", pitch=40),
           "unseen eSpeak NG voice (en+f2)": synthesize(text, "en+f2", pitch=70),
           "unseen eSpeak NG voice (en+m1)": synthesize(text, "en+m1", pitch=45),
           "440 Hz tone, 0.5 s": (0.3 * np.sin(2 * np.pi * 440 * np.arange(8000) / 16000),
                                  16000),
           "white noise, 4 s": (0.1 * np.random.default_rng(0).standard_normal(64000), 16000)}
  paths = {}
  for k, (kind, (x, sr)) in enumerate(files.items()):
    paths[kind] = os.path.join(folder, f"{k}.wav")
    sf.write(paths[kind], np.asarray(x, np.float32), sr)
  if real:
    human = sorted(glob.glob(os.path.join(real, "alsa-utils", "*", "*.wav")))
    if human:
      paths["unseen human voice (alsa-utils)"] = human[0]
  answers = {}
  for kind, path in paths.items():
    row = {}
    for label, extra in (("closed_set", []), ("threshold_auto", ["--threshold", "auto"])):
      out = run_measured([sys.executable, "-m", "trainer.predict", "--model",
                          os.path.join(run, "model.keras"), "--json", *extra, path])
      if out["returncode"]:
        row[label] = {"error": out["stderr"].strip().splitlines()[-1:]}
        continue
      answer = json.loads(out["stdout"].strip().splitlines()[-1])
      row[label] = {"speaker": answer["speaker"], "probability": round(answer["probability"], 4),
                    "distance": None if answer["distance"] is None
                    else round(answer["distance"], 3)}
    answers[kind] = row
  shutil.rmtree(folder)
  return answers


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--data_dir", default=os.path.expanduser("~/tensorflow_datasets"))
  p.add_argument("--out", default="docs/training_defaults.json")
  p.add_argument("--only", help="one of: " + ", ".join(RUNS))
  p.add_argument("--real", help="folder of benchmarks/corpora/klettres.sh (a human voice for "
                                "the open-set check)")
  args = p.parse_args(argv)
  result = {"machine": machine(),
            "command": "python benchmarks/fit_defaults.py " + " ".join(
                sys.argv[1:] if argv is None else argv), "runs": {}}
  if args.only and os.path.exists(args.out):   # the other rows stay, with their command
    with open(args.out) as f:
      before = json.load(f)
    result["runs"] = before.get("runs", {})
    for row in result["runs"].values():
      row.setdefault("written_by", before["command"])
  for name, (dataset, build) in RUNS.items():
    if args.only and name != args.only:
      continue
    made = run_measured([sys.executable, "-m", "pipeline.build", "--data_dir", args.data_dir,
                         *build])
    if made["returncode"]:
      raise SystemExit(made["stderr"][-2000:])
    output = tempfile.mkdtemp(prefix="fit_defaults_")
    cmd = [sys.executable, "-m", "trainer.fit", "--dataset", dataset, "--data_dir",
           args.data_dir, "--output", output]
    run = run_measured(cmd, echo=True)
    if run["returncode"]:
      raise SystemExit(run["stderr"][-3000:])
    with open(os.path.join(output, "metrics.json")) as f:
      metrics = json.load(f)
    open_set = open_set_answers(output, args.real) if dataset == "a2i_speakers" else None
    shutil.rmtree(output)
    result["runs"][name] = {
        "command": f"python -m trainer.fit --dataset {dataset}",
        "wall_seconds": round(run["seconds"], 1),
        "peak_rss_mb": round(run["peak_rss"] / 2**20),
        "test_accuracy": metrics["test_accuracy"], "test_examples": metrics["test_examples"],
        "speakers": len(metrics["speakers"]), "model": metrics["model"],
        "parameters": metrics["parameters"], "epochs_scheduled": metrics["epochs_scheduled"],
        "epochs_run": metrics["epochs_run"], "best_epoch": metrics["best_epoch"],
        "train_seconds": metrics["train_seconds_this_run"],
        "open_set_threshold_95": metrics.get("open_set_threshold_95"),
        "written_by": result["command"]}
    if open_set:
      result["runs"][name]["predict"] = open_set
    print(json.dumps(result["runs"][name]), flush=True)
  with open(args.out, "w") as f:
    json.dump(result, f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
