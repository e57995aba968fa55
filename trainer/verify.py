"""Speaker verification: a trained model's embeddings scored on a trials list,
as the field scores VoxCeleb1-O; or a study on unseen speakers of a dataset.

    python -m trainer.verify --model RUN/model.keras --trials veri_test2.txt \
        --audio_root VoxCeleb1/test/wav --output runs/vox1_o [--cohort a2i_speakers/vox1_dev]

Trials mode (--model, --trials, --audio_root): TRIALS in VoxCeleb's format,
one trial a line, `1|0 enrol test` with paths relative to --audio_root. Each
file named by a trial is embedded once as a whole utterance: all its clips,
encoded as the run's training data was (encoding.json), through the
network's `embedding` layer, averaged. A trial's score is the cosine of its
two embeddings; with --cohort (the training dataset), also adaptively
s-normalised against the training speakers' mean embeddings (top
--cohort_top). Writes scores.txt (`score enrol test label`, one line per
trial), verification.json (`eer`, `min_dcf` at p_target 0.01 and 0.05 with
C_miss = C_fa = 1, `trials`, `target_trials`, the command; the same under
`snorm` with a cohort), verification.md and verification.png (DET). A file
that cannot be decoded is listed with its reason, and its trials with it:
they are not scored, and the counts say so.

Study mode (--dataset, built with --split_by speaker): the network is
trained on the training speakers, every pair of test clips is a trial, and
the same trials are scored on classical embeddings for comparison (the
dataset's 94 descriptors standardised, the same with LDA learnt on the
training speakers, and openSMILE's eGeMAPS functionals likewise).
"""

from __future__ import annotations

import dataclasses
import os
import sys

from pipeline.console import CommandParser
from trainer.config import MODELS, TrainConfig


def equal_error_rate(scores, same):
  """(EER, AUC, false-alarm rates, miss rates) of scored trials (trainer.scoring)."""
  from sklearn.metrics import roc_auc_score

  from trainer import scoring

  _, miss, false_alarm = scoring.error_rates(scores, same)
  return (scoring.equal_error_rate(scores, same)[0], float(roc_auc_score(same, scores)),
          false_alarm, miss)


def cosine_trials(e, labels):
  """(scores, same speaker) of every pair of rows of e."""
  import numpy as np

  e = np.asarray(e, np.float64)
  e = e / (np.linalg.norm(e, axis=1, keepdims=True) + 1e-12)
  i, j = np.triu_indices(len(e), k=1)
  return np.einsum("nd,nd->n", e[i], e[j]), labels[i] == labels[j]


def classical_embeddings(dataset, data_dir):
  """{name: (train rows, train labels, test rows, test labels)} of the
  classical front ends: the descriptors and eGeMAPS functionals."""
  from trainer import baselines
  from trainer.data import descriptor_arrays

  out = {"descriptors": descriptor_arrays(dataset, "train") + descriptor_arrays(dataset, "test")}
  train, test = (baselines.egemaps_features(dataset, data_dir, s) for s in ("train", "test"))
  out["egemaps"] = train[:2] + test[:2]
  return out


def classical_scores(x, y, xt, yt, lda: bool):
  """Cosine trials of test rows standardised on the training rows (NaN ->
  training median), optionally projected by LDA fitted on the training speakers."""
  from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

  from trainer.baselines import standardised

  front, keep = standardised(x, y, *([LinearDiscriminantAnalysis()] if lda else []))
  return cosine_trials(front.transform(xt[:, keep]), yt)


def det_figure(curves: dict, title: str):
  """DET curves (normal-deviate axes) of {name: (eer, fpr, fnr)}."""
  import numpy as np
  from scipy.stats import norm

  from trainer.results import pyplot

  plt = pyplot()
  fig, ax = plt.subplots(figsize=(4.2, 4))
  clip = lambda v: norm.ppf(np.clip(v, 1e-4, 1 - 1e-4))
  for name, (c_eer, c_fpr, c_fnr) in curves.items():
    ax.plot(clip(c_fpr), clip(c_fnr), label=f"{name}: EER {100 * c_eer:.1f} %")
  ticks = [0.01, 0.05, 0.2, 0.5, 0.8]
  ax.set_xticks(clip(np.array(ticks)), [f"{100 * t:g}" for t in ticks])
  ax.set_yticks(clip(np.array(ticks)), [f"{100 * t:g}" for t in ticks])
  ax.plot([-4, 4], [-4, 4], "k:", lw=0.8)
  ax.set_xlim(clip(0.005), clip(0.9))
  ax.set_ylim(clip(0.005), clip(0.9))
  ax.set_xlabel("false acceptance (%)")
  ax.set_ylabel("false rejection (%)")
  ax.set_title(title, fontsize=9)
  ax.legend(fontsize=6)
  fig.tight_layout()
  return fig


def read_trials(path: str) -> list[tuple[int, str, str]]:
  """(label, enrol, test) of each line of a VoxCeleb trials file; ValueError
  naming the first line that is not `1|0 path path`."""
  trials = []
  with open(path, encoding="utf-8") as f:
    for n, line in enumerate(f, 1):
      parts = line.split()
      if not parts:
        continue
      if len(parts) != 3 or parts[0] not in ("0", "1"):
        raise ValueError(f"{path}: line {n} is not '1|0 enrol test': {line.strip()[:80]!r}")
      trials.append((int(parts[0]), parts[1], parts[2]))
  if not trials:
    raise ValueError(f"{path}: no trial in it")
  return trials


def score_trials(args, trials: list[tuple[int, str, str]]) -> int:
  """The trials mode: embeddings of every file, cosine scores, EER and minDCF."""
  import keras
  import numpy as np
  from tqdm import tqdm

  from pipeline.audio import AudioError
  from trainer import results, scoring
  from trainer.predict import embed_file, load_run

  model, settings = load_run(args.model)
  embedder = keras.Model(model.input, model.get_layer("embedding").output)
  files = sorted({f for _, a, b in trials for f in (a, b)})
  embedding, failed = {}, {}
  for name in tqdm(files, desc="embedding", unit="file", disable=not sys.stderr.isatty()):
    try:
      embedding[name] = embed_file(embedder, settings, os.path.join(args.audio_root, name))
    except (AudioError, OSError) as e:
      failed[name] = str(e)
  scored = [(y, a, b) for y, a, b in trials if a in embedding and b in embedding]
  if not scored or len({y for y, _, _ in scored}) < 2:
    print(f"error: {len(scored)} of {len(trials)} trials could be scored, not both kinds "
          f"({len(failed)} files failed, e.g. {next(iter(failed.items()), '')})", file=sys.stderr)
    return 1
  labels = np.array([y for y, _, _ in scored], bool)
  enrol = np.stack([embedding[a] for _, a, _ in scored])
  test = np.stack([embedding[b] for _, _, b in scored])
  scores = scoring.cosine(enrol, test)

  def measures(s):
    eer, threshold = scoring.equal_error_rate(s, labels)
    return {"eer": eer, "eer_threshold": threshold,
            "min_dcf": {str(p): scoring.min_dcf(s, labels, p) for p in (0.01, 0.05)}}

  outcome = {"command": "python -m trainer.verify " + " ".join(sys.argv[1:]),
             "model": os.path.abspath(args.model), "trials_file": os.path.abspath(args.trials),
             "trials": len(trials), "scored_trials": len(scored),
             "target_trials": int(labels.sum()), "files": len(files),
             "failed_files": failed, **measures(scores)}
  curves = {"cosine": scores}
  if args.cohort:
    cohort = cohort_embeddings(args, model, settings["channels"])
    normed = scoring.adaptive_snorm(scores, enrol, test, cohort, args.cohort_top)
    outcome["snorm"] = {"cohort": args.cohort, "cohort_speakers": len(cohort),
                        "top": min(args.cohort_top, len(cohort)), **measures(normed)}
    curves["cosine, adaptive s-norm"] = normed
  os.makedirs(args.output, exist_ok=True)
  with open(os.path.join(args.output, "scores.txt"), "w") as f:
    final = curves[list(curves)[-1]]
    f.writelines(f"{v:.6f} {a} {b} {y}\n" for v, (y, a, b) in zip(final, scored))
  rows = [("cosine", outcome)] + ([("adaptive s-norm", outcome["snorm"])] if args.cohort else [])
  markdown = (f"### Verification: {os.path.basename(args.trials)}\n\n{len(scored)} trials "
              f"scored of {len(trials)} ({int(labels.sum())} target), {len(files)} files "
              f"({len(failed)} failed).\n\n| scoring | EER | minDCF 0.01 | minDCF 0.05 |\n"
              "|---|---|---|---|\n" + "".join(
                  f"| {name} | {100 * r['eer']:.2f} % | {r['min_dcf']['0.01']:.4f} | "
                  f"{r['min_dcf']['0.05']:.4f} |\n" for name, r in rows))
  det = {}
  for name, v in curves.items():
    eer, _, false_alarm, miss = equal_error_rate(v, labels)
    det[name] = (eer, false_alarm, miss)
  results.write(args.output, "verification", outcome, markdown,
                det_figure(det, os.path.basename(args.trials)))
  print(f"EER {100 * outcome['eer']:.2f} %, minDCF(0.01) {outcome['min_dcf']['0.01']:.4f}"
        + (f"; with s-norm {100 * outcome['snorm']['eer']:.2f} %, "
           f"{outcome['snorm']['min_dcf']['0.01']:.4f}" if args.cohort else "")
        + f" over {len(scored)} trials -> {args.output}")
  return 0


def cohort_embeddings(args, model, channels: str):
  """The mean embedding of each speaker of the cohort dataset's training
  split (the speakers the model was trained on), for s-norm."""
  import numpy as np

  from trainer import data
  from trainer.heads import embeddings_of

  dataset, _ = data.open_or_exit(args.cohort, args.data_dir)
  train = data.pipeline(dataset.builder.as_dataset(split="train"), channels, 32, False, 0,
                        cache=False)
  e, y = embeddings_of(model, train)
  return np.stack([e[y == k].mean(axis=0) for k in np.unique(y)])


def main(argv=None) -> int:
  p = CommandParser(prog="python -m trainer.verify", description=__doc__.split("\n")[0])
  p.add_argument("--model", help="trials mode: model.keras of a trainer.fit run; study mode: "
                                 f"the network to train ({', '.join(MODELS)}; default cells)")
  p.add_argument("--trials", help="trials mode: VoxCeleb-format trials (1|0 enrol test)")
  p.add_argument("--audio_root", help="trials mode: the folder the trials' paths are relative to")
  p.add_argument("--cohort", help="trials mode: TFDS name of the training dataset, for "
                                  "adaptive s-norm against its speakers")
  p.add_argument("--cohort_top", type=int, default=200,
                 help="trials mode: cohort speakers closest to each side used by s-norm")
  p.add_argument("--dataset", help="study mode: TFDS name/config, built --split_by speaker")
  p.add_argument("--data_dir", help="TFDS data dir")
  p.add_argument("--output", default="runs/verification")
  TrainConfig.add_flags(p, skip=("output", "dataset", "data_dir", "backend", "model"))
  args = p.parse_args(argv)
  trials_mode = [args.model, args.trials, args.audio_root]
  if args.trials or args.audio_root or (args.model and args.model not in MODELS):
    if not all(trials_mode):
      p.error("the trials mode needs --model, --trials and --audio_root")
    for flag, path, kind in (("--model", args.model, os.path.isfile),
                             ("--trials", args.trials, os.path.isfile),
                             ("--audio_root", args.audio_root, os.path.isdir)):
      if not kind(path):
        p.error(f"{flag} {path}: no such {'folder' if kind is os.path.isdir else 'file'}")
    if args.cohort_top < 1:
      p.error("--cohort_top must be positive")
    try:
      trials = read_trials(args.trials)
    except ValueError as e:
      p.error(str(e))
    from trainer import quiet

    quiet.start_tensorflow()
    return score_trials(args, trials)
  if not args.dataset:
    p.error("give --model, --trials and --audio_root (trials mode) or --dataset (study mode)")
  args.model = args.model or "cells"
  # Trials are scored on the embedding, so no back end is fitted on top of it.
  config = TrainConfig.for_study(args, p, backend="softmax")
  from trainer import quiet

  quiet.start_tensorflow()
  from trainer import data, results
  from trainer.heads import embeddings_of
  from trainer.report import dataset_identity
  from trainer.train import train

  dataset, data_dir = data.open_or_exit(args.dataset, args.data_dir)
  train_ids = sorted(set(data.descriptor_arrays(dataset, "train")[1].tolist()))
  test_labels = data.descriptor_arrays(dataset, "test")[1]
  if set(train_ids) & set(test_labels.tolist()):
    print(f"error: {args.dataset} has speakers in both train and test; build it with "
          "--split_by speaker for verification", file=sys.stderr)
    return 2
  # Train on the training speakers (the validation split holds other
  # speakers: the stopping rule watches the training loss).
  result = train(dataclasses.replace(config, data_dir=data_dir), speakers=train_ids,
                 validation=False)
  test = data.pipeline(dataset.builder.as_dataset(split="test"), args.channels,
                       args.batch_size, False, args.seed)
  e, _ = embeddings_of(result.model, test)
  scores, same = cosine_trials(e, test_labels)
  eer, auc, fpr, fnr = equal_error_rate(scores, same)
  curves = {f"CNN ({args.model}, {args.channels})": (eer, fpr, fnr)}
  baselines = {}
  for front, (x, y, xt, yt) in classical_embeddings(dataset, data_dir).items():
    for lda in (False, True):
      name = f"{front}_lda" if lda else f"{front}_standardised"
      b_scores, b_same = classical_scores(x, y, xt, yt, lda)
      b_eer, b_auc, b_fpr, b_fnr = equal_error_rate(b_scores, b_same)
      baselines[name] = {"eer": b_eer, "auc": b_auc}
      if lda:
        curves[name.replace("_", " + ").replace("lda", "LDA")] = (b_eer, b_fpr, b_fnr)
  names = dataset.speakers
  outcome = {"dataset": dataset_identity(dataset.builder), "model": args.model,
             "channels": args.channels, "eer": eer, "auc": auc, "trials": int(len(scores)),
             "target_trials": int(same.sum()), "train_speakers": [names[k] for k in train_ids],
             "test_speakers": sorted({names[k] for k in test_labels.tolist()}),
             "test_clips": int(len(e)), "baselines": baselines}
  markdown = (f"### Verification on unseen speakers ({args.dataset})\n\n"
              f"{len(outcome['test_speakers'])} test speakers, {len(e)} clips, {len(scores)} "
              f"trials ({int(same.sum())} target); cosine scoring of every pair.\n\n"
              "| embedding | EER | AUC |\n|---|---|---|\n"
              f"| CNN `{args.model}` ({args.channels}), penultimate layer | {eer:.3f} | "
              f"{auc:.3f} |\n" + "".join(f"| {name} | {b['eer']:.3f} | {b['auc']:.3f} |\n"
                                         for name, b in baselines.items()))
  results.write(args.output, "verification", outcome, markdown,
                det_figure(curves, "DET, unseen speakers"))
  print(f"EER {100 * eer:.2f} % over {len(scores)} trials of {len(outcome['test_speakers'])} "
        f"unseen speakers (" + ", ".join(f"{n} {100 * b['eer']:.2f} %"
                                          for n, b in baselines.items())
        + f") -> {args.output}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
