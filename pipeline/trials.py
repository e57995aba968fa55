"""A verification trials list for a corpus that has none, in VoxCeleb's format.

    python -m pipeline.trials --input CORPUS --output trials.txt [--per_file 2] [--seed 0]
    python -m pipeline.trials --report D/a2i_speakers/NAME/2.0.0/build_report.json --split test ...

With --report, the files are those a build encoded into --split (the unseen
speakers of a build made with --split_by speaker), paths relative to the
corpus root the build read.

Each line is `1|0 enrol test`, paths relative to the corpus root (the
`--audio_root` of `trainer.verify`). For every audio file of the corpus
(listed with its layout, as `pipeline.build` lists it), `--per_file` target
trials (another file of the same speaker, from another session where the
speaker has one: VoxCeleb1-O's target trials pair different videos) and as
many non-target trials (a file of another speaker, any), drawn by a
generator seeded with --seed: the same corpus and seed give the same list.
Pairs are unordered and listed once, so the counts are balanced up to the
pairs drawn twice. Give it speakers that training never saw (a test folder,
as VoxCeleb1's test set is its own folder).
"""

from __future__ import annotations

import collections
import json
import os
import sys

import numpy as np

from pipeline.console import CommandParser
from pipeline.corpus import LAYOUTS, list_corpus


def draw_trials(files, per_file: int, seed: int) -> list[tuple[int, str, str]]:
  """files: (path, speaker, group) of every usable file. Returns sorted
  (label, enrol, test) trials, each unordered pair once."""
  files = sorted(files)
  rng = np.random.default_rng(seed)
  by_speaker = collections.defaultdict(list)
  for k, (_, speaker, _) in enumerate(files):
    by_speaker[speaker].append(k)
  pairs = {}
  for k, (_, speaker, group) in enumerate(files):
    own = [j for j in by_speaker[speaker] if j != k]
    elsewhere = [j for j in own if files[j][2] != group] or own
    if own:
      for j in rng.choice(elsewhere, size=min(per_file, len(elsewhere)), replace=False):
        pairs.setdefault(tuple(sorted((k, int(j)))), 1)
    # Non-target partners drawn from every file, another speaker's kept:
    # a few draws per file on a corpus of many speakers, never a scan of all.
    others = len(files) - len(by_speaker[speaker])
    chosen = set()
    while len(chosen) < min(per_file, others):
      j = int(rng.integers(len(files)))
      if files[j][1] != speaker:
        chosen.add(j)
    for j in sorted(chosen):
      pairs.setdefault(tuple(sorted((k, j))), 0)
  return sorted((label, files[a][0], files[b][0]) for (a, b), label in pairs.items())


def main(argv=None) -> int:
  p = CommandParser(prog="python -m pipeline.trials", description=__doc__.split("\n")[0])
  p.add_argument("--input", help="corpus folder (its speakers: unseen in training)")
  p.add_argument("--report", help="instead: a build's build_report.json ...")
  p.add_argument("--split", default="test", help="... and the split whose files to pair")
  p.add_argument("--layout", default="auto", choices=("auto",) + tuple(LAYOUTS))
  p.add_argument("--output", required=True, help="the trials file to write")
  p.add_argument("--per_file", type=int, default=2, help="target and non-target trials per file")
  p.add_argument("--seed", type=int, default=0)
  args = p.parse_args(argv)
  if bool(args.input) == bool(args.report):
    p.error("give --input (a corpus folder) or --report (a build's report), one of them")
  if args.per_file < 1:
    p.error("--per_file must be positive")
  if args.report:
    try:
      with open(args.report, encoding="utf-8") as f:
        report = json.load(f)
      layout = report["dataset"]["layout"]
      usable = [(r["file"], r["speaker"], r["group"]) for r in report["files"]
                if r["status"] == "encoded" and r["split"] == args.split]
    except (OSError, ValueError, KeyError) as e:
      p.error(f"--report {args.report}: not a readable build report ({e})")
  else:
    if not os.path.isdir(args.input):
      p.error(f"--input {args.input}: no such folder")
    try:
      layout, listed = list_corpus(os.path.abspath(args.input), args.layout)
    except (ValueError, OSError) as e:
      p.error(str(e))
    root = os.path.abspath(args.input)
    usable = [(os.path.relpath(f.path, root).replace(os.sep, "/"), f.speaker, f.group)
              for f in listed if f.status == "audio"]
  if len({s for _, s, _ in usable}) < 2:
    p.error(f"{args.input or args.report}: trials need two speakers or more ({layout} layout, "
            f"{len(usable)} audio files)")
  trials = draw_trials(usable, args.per_file, args.seed)
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  with open(args.output, "w", encoding="utf-8") as f:
    f.writelines(f"{label} {a} {b}\n" for label, a, b in trials)
  targets = sum(label for label, _, _ in trials)
  alone = sorted(s for s, n in collections.Counter(s for _, s, _ in usable).items() if n == 1)
  print(f"{len(trials)} trials ({targets} target, {len(trials) - targets} non-target) over "
        f"{len(usable)} files of {len({s for _, s, _ in usable})} speakers ({layout} layout) -> "
        f"{args.output}" + (f"; no target trial for {len(alone)} speakers with one file"
                            if alone else ""))
  return 0


if __name__ == "__main__":
  sys.exit(main())
