"""Identification and verification on the real voices we have, with the recipes' commands.

    benchmarks/corpora/klettres.sh REAL && benchmarks/corpora/ktuberling.sh REAL
    python benchmarks/real_protocols.py --real REAL --data_dir D --runs RUNS

KLettres and KTuberling together (REAL/real_speakers.csv: 20 + 26 speakers,
each speaker also a language and a recording setup). Identification: built
split by recording (80/10/10), `trainer.fit` with the defaults, top-1 test
accuracy. Verification: built split by speaker (60/10/30: the test
speakers are never trained on), `trainer.fit` on the training speakers, a
trials list drawn over the test split by `pipeline.trials --report`, then
`trainer.verify` trials mode with and without adaptive s-norm against the
training speakers. Writes docs/results/identification_real_128.json (the
run's metrics and the commands), docs/results/trials_real_spk_128.txt and
docs/results/verification_real_spk_128/ (verification.json, scores.txt,
verification.md, verification.png).
"""

import argparse
import json
import os
import shlex
import subprocess
import sys

RESULTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs",
                       "results")


def command(*argv) -> str:
  """Runs `python -m ...`, echoing it; stops the study on failure."""
  line = shlex.join(["python", "-m", *map(str, argv)])
  print(f"$ {line}", flush=True)
  out = subprocess.run([sys.executable, "-m", *map(str, argv)], text=True,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  if out.returncode != 0:
    raise SystemExit(f"failed ({out.returncode}): {line}")
  return line


def command_once(result: str, *argv) -> str:
  """`command(*argv)`, unless `result` (what it writes) is there from an
  earlier, stopped study: then it is read, and the line says so."""
  if os.path.exists(result):
    return "(read) " + shlex.join(["python", "-m", *map(str, argv)])
  return command(*argv)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--real", required=True, help="the folder of klettres.sh and ktuberling.sh")
  p.add_argument("--data_dir", required=True)
  p.add_argument("--runs", required=True)
  p.add_argument("--image_size", default="128")
  args = p.parse_args(argv)
  manifest = os.path.join(args.real, "real_speakers.csv")
  size, d = args.image_size, args.data_dir
  iden, spk = f"real_iden_{size}", f"real_spk_{size}"
  done = [command("pipeline.build", "--input", manifest, "--name", iden, "--image_size", size,
                  "--data_dir", d, "--runner=DirectRunner"),
          command("trainer.fit", "--dataset", f"a2i_speakers/{iden}", "--data_dir", d,
                  "--output", os.path.join(args.runs, iden))]
  with open(os.path.join(args.runs, iden, "metrics.json")) as f:
    metrics = json.load(f)
  with open(os.path.join(RESULTS, f"identification_real_{size}.json"), "w") as f:
    json.dump({"commands": done, "corpus": "KLettres + KTuberling (REAL/real_speakers.csv)",
               "metrics": metrics}, f, indent=1)
  report = os.path.join(d, "a2i_speakers", spk, "2.0.0", "build_report.json")
  trials = os.path.join(RESULTS, f"trials_real_spk_{size}.txt")
  command("pipeline.build", "--input", manifest, "--name", spk, "--image_size", size,
          "--split_by", "speaker", "--splits", "60/10/30", "--data_dir", d,
          "--runner=DirectRunner")
  command("trainer.fit", "--dataset", f"a2i_speakers/{spk}", "--data_dir", d, "--output",
          os.path.join(args.runs, spk))
  command("pipeline.trials", "--report", report, "--split", "test", "--output", trials,
          "--per_file", "5")
  command("trainer.verify", "--model", os.path.join(args.runs, spk, "model.keras"),
          "--trials", trials, "--audio_root", args.real, "--cohort", f"a2i_speakers/{spk}",
          "--data_dir", d, "--output", os.path.join(RESULTS, f"verification_real_spk_{size}"))
  return 0


if __name__ == "__main__":
  sys.exit(main())
