"""Speaker verification with the CNN's embeddings on speakers it never saw.

    python -m pipeline.build --demo voices20 --image_size 128 --split_by speaker --name voices20_spk
    python -m trainer.verify --dataset a2i_speakers/voices20_spk --output runs/verification

Needs speaker-disjoint splits (built with --split_by speaker). The CNN learns
to classify the training speakers; its penultimate layer ("embedding") then
embeds every test clip, and every pair of test clips is a trial scored by
cosine similarity: same speaker (target) or not. Writes verification.json
(EER, AUC, trial counts), verification.md and verification.png (DET curve).
"""

from __future__ import annotations

import argparse
import json
import os
import sys


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


def main(argv=None) -> int:
  from trainer import study

  p = argparse.ArgumentParser(prog="python -m trainer.verify", description=__doc__.split("\n")[0])
  p.add_argument("--dataset", required=True, help="TFDS name/config, built --split_by speaker")
  p.add_argument("--data_dir", help="TFDS data dir")
  p.add_argument("--output", default="runs/verification")
  study.add_training_flags(p, skip=("output", "dataset", "data_dir"))
  args = p.parse_args(argv)
  config = study.checked_config(p, args)
  import keras
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  import numpy as np
  from scipy.stats import norm

  from trainer import data
  from trainer.config import TrainConfig
  from trainer.train import train

  builder, data_dir = study.open_dataset_or_exit(args.dataset, args.data_dir)
  train_ids = sorted(set(labels_of(builder, "train").tolist()))
  test_labels = labels_of(builder, "test")
  if set(train_ids) & set(test_labels.tolist()):
    print(f"error: {args.dataset} has speakers in both train and test; build it with "
          "--split_by speaker for verification", file=sys.stderr)
    return 2
  # Train on the training speakers (the validation split holds other
  # speakers: the stopping rule watches the training loss).
  model = train(TrainConfig(**{**config.__dict__, "data_dir": data_dir}), speakers=train_ids,
                validation=False).model
  embed = keras.Model(model.input, model.get_layer("embedding").output)
  test = data.pipeline(builder.as_dataset(split="test"), args.channels, args.batch_size, False,
                       args.seed)
  e = np.concatenate([embed.predict_on_batch(x) for x, _ in test]).astype(np.float64)
  e /= np.linalg.norm(e, axis=1, keepdims=True) + 1e-12
  i, j = np.triu_indices(len(e), k=1)
  scores = np.einsum("nd,nd->n", e[i], e[j])
  same = test_labels[i] == test_labels[j]
  eer, auc, fpr, fnr = equal_error_rate(scores, same)
  names = builder.info.features["speaker"].names
  result = {"dataset": study.identity(builder), "model": args.model, "channels": args.channels,
            "eer": eer, "auc": auc, "trials": int(len(scores)), "target_trials": int(same.sum()),
            "train_speakers": [names[k] for k in train_ids],
            "test_speakers": sorted({names[k] for k in test_labels.tolist()}),
            "test_clips": int(len(e))}
  os.makedirs(args.output, exist_ok=True)
  with open(os.path.join(args.output, "verification.json"), "w") as f:
    json.dump(result, f, indent=1)
  with open(os.path.join(args.output, "verification.md"), "w") as f:
    f.write(f"### Verification on unseen speakers ({args.dataset}, {args.model}, "
            f"{args.channels})\n\n| test speakers | clips | trials (target) | EER | AUC |\n"
            f"|---|---|---|---|---|\n| {len(result['test_speakers'])} | {len(e)} | "
            f"{len(scores)} ({int(same.sum())}) | {eer:.3f} | {auc:.3f} |\n")
  fig, ax = plt.subplots(figsize=(4.2, 4))
  clip = lambda v: norm.ppf(np.clip(v, 1e-4, 1 - 1e-4))
  ax.plot(clip(fpr), clip(fnr), label=f"EER {100 * eer:.1f} %")
  ticks = [0.01, 0.05, 0.2, 0.5, 0.8]
  ax.set_xticks(clip(np.array(ticks)), [f"{100 * t:g}" for t in ticks])
  ax.set_yticks(clip(np.array(ticks)), [f"{100 * t:g}" for t in ticks])
  ax.plot([-4, 4], [-4, 4], "k:", lw=0.8)
  ax.set_xlim(clip(0.005), clip(0.9))
  ax.set_ylim(clip(0.005), clip(0.9))
  ax.set_xlabel("false acceptance (%)")
  ax.set_ylabel("false rejection (%)")
  ax.set_title("DET, unseen speakers", fontsize=9)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(os.path.join(args.output, "verification.png"), dpi=100)
  plt.close(fig)
  print(f"EER {100 * eer:.2f} % over {len(scores)} trials of {len(result['test_speakers'])} "
        f"unseen speakers -> {args.output}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
