"""Speaker verification with the CNN's embeddings on speakers it never saw.

    python -m pipeline.build --demo voices20 --image_size 128 --split_by speaker --name voices20_spk
    python -m trainer.verify --dataset a2i_speakers/voices20_spk --output runs/verification

Needs speaker-disjoint splits (built with --split_by speaker). The CNN learns
to classify the training speakers; its penultimate layer ("embedding") then
embeds every test clip, and every pair of test clips is a trial scored by
cosine similarity: same speaker (target) or not. The same trials are scored
on classical embeddings for comparison: the dataset's 94 descriptors
standardised, the same projected by linear discriminant analysis (LDA)
learnt on the training speakers, and openSMILE's eGeMAPS functionals with
the same LDA (the usual classical front end and back end). Writes
verification.json (EER, AUC, trial counts per embedding), verification.md
and verification.png (DET curves).
"""

from __future__ import annotations

import dataclasses
import sys

from pipeline.console import CommandParser
from trainer.config import TrainConfig


def labels_of(builder, split):
  import numpy as np
  import tensorflow_datasets as tfds

  ds = builder.as_dataset(split=split, decoders={"image": tfds.decode.SkipDecoding()})
  return np.array([ex["speaker"] for ex in tfds.as_numpy(ds)])


def equal_error_rate(scores, same):
  """(EER, AUC, false positive rates, false negative rates) of scored trials."""
  import numpy as np
  from sklearn.metrics import roc_auc_score, roc_curve

  fpr, tpr, _ = roc_curve(same, scores)
  fnr = 1 - tpr
  i = int(np.argmin(np.abs(fnr - fpr)))
  return float((fpr[i] + fnr[i]) / 2), float(roc_auc_score(same, scores)), fpr, fnr


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

  out = {"descriptors": baselines.descriptor_arrays(dataset, "train")
         + baselines.descriptor_arrays(dataset, "test")}
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


def main(argv=None) -> int:
  p = CommandParser(prog="python -m trainer.verify", description=__doc__.split("\n")[0])
  p.add_argument("--dataset", required=True, help="TFDS name/config, built --split_by speaker")
  p.add_argument("--data_dir", help="TFDS data dir")
  p.add_argument("--output", default="runs/verification")
  TrainConfig.add_flags(p, skip=("output", "dataset", "data_dir", "backend"))
  args = p.parse_args(argv)
  # Trials are scored on the embedding, so no back end is fitted on top of it.
  config = TrainConfig.for_study(args, p, backend="softmax")
  from trainer import quiet

  quiet.start_tensorflow()
  from trainer import data, results
  from trainer.heads import embeddings_of
  from trainer.report import dataset_identity
  from trainer.train import train

  dataset, data_dir = data.open_or_exit(args.dataset, args.data_dir)
  train_ids = sorted(set(labels_of(dataset.builder, "train").tolist()))
  test_labels = labels_of(dataset.builder, "test")
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
