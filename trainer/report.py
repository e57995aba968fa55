"""The run report: metrics.json, figures, and the settings a model needs to predict."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from trainer.data import CHANNELS
from trainer.results import pyplot

ENCODING_FILE = "encoding.json"
CENTROIDS_FILE = "speakers.json"


def predict(model, ds):
  """(true labels, class probabilities, uint8 images of the first batch)."""
  ys, probs, first = [], [], None
  for x, y in ds:
    x, y = np.asarray(x), np.asarray(y)      # tf.data batches, fed to any Keras backend
    probs.append(np.asarray(model.predict_on_batch(x)))
    ys.append(y)
    if first is None:
      first = (x.astype(np.uint8), y)
  return np.concatenate(ys), np.concatenate(probs).astype(np.float64), first


def accuracy(model, ds) -> float:
  """Top-1 accuracy of `model` on a split of (inputs, labels) batches."""
  labels, probs, _ = predict(model, ds)
  return float((probs.argmax(axis=1) == labels).mean())


def history_rows(output: str) -> list[dict]:
  """Per-epoch history across resumed runs (last line per epoch wins)."""
  path = os.path.join(output, "history.csv")
  if not os.path.exists(path):
    return []
  rows = {}
  with open(path) as f:
    for row in csv.DictReader(f):
      if row.get("epoch", "epoch") != "epoch":
        rows[int(row["epoch"])] = {k: float(v) for k, v in row.items() if v not in ("", None)}
  return [rows[k] for k in sorted(rows)]


def dataset_identity(builder) -> dict:
  """Name, config, version, and a fingerprint of the prepared data (its
  splits' shard lengths and sizes, its source and encoding): two builds
  that differ in any example count or setting differ here."""
  import hashlib

  config = getattr(builder, "builder_config", None)
  info = builder.info
  facts = {"splits": {k: [list(v.shard_lengths), v.num_bytes] for k, v in info.splits.items()},
           "metadata": {k: info.metadata.get(k) for k in ("input", "corpus_fingerprint",
                                                         "image_size", "split_by", "fractions")},
           "encoding": dict(info.metadata.get("encoding", {}))}
  return {"name": builder.name, "config": config.name if config else None,
          "version": str(builder.version),
          "fingerprint": hashlib.sha256(json.dumps(facts, sort_keys=True, default=str)
                                        .encode()).hexdigest()[:16]}


def write_encoding(folder: str, dataset, config) -> None:
  """encoding.json: what trainer.predict needs to encode audio as the
  model's training data was encoded (written when training starts): the
  dataset's own spec record, as the builder stored it."""
  with open(os.path.join(folder, ENCODING_FILE), "w") as f:
    json.dump({"encoding": dataset.spec.to_dict(), "image_size": dataset.image_size,
               "channels": config.channels, "speakers": dataset.speakers,
               "dataset": dataset_identity(dataset.builder), "model": config.model}, f, indent=1)


def _fusion_effect(model, test, labels, weights):
  """The fitted fusion weights and, for comparison, the test accuracy the
  same network scores with every weight left at 1 (None without fusion)."""
  if not weights:
    return None
  from trainer.heads import fusion_layer

  fusion = fusion_layer(model)
  fusion.scale.assign(np.ones(len(weights), np.float32))
  try:
    _, prob, _ = predict(model, test)
  finally:
    fusion.scale.assign(np.asarray(weights, np.float32))
  return {"weights": weights, "test_accuracy_weights_1": float((prob.argmax(axis=1) == labels).mean())}


def _backend_effect(result, config, test, labels):
  """The back end and, beside it, the test accuracy of each back end the run
  built: the network's own softmax (the same number as test_accuracy with
  backend softmax), LDA, their average; with backend auto, all three and
  what was chosen on what evidence."""
  out = {"name": config.backend, **(result.backend_choice or {})}
  built = {"softmax": result.network, "lda": result.lda, "average": result.average}
  others = {name: model for name, model in built.items() if model is not None
            and (config.backend == "auto" or model is not result.model)}
  for name, model in others.items():
    _, prob, _ = predict(model, test)
    out[f"test_accuracy_{name}"] = float((prob.argmax(axis=1) == labels).mean())
  return out


def write(result, config, folder: str) -> dict:
  model, splits = result.model, result.splits
  speakers = splits.speakers
  labels = list(range(len(speakers)))
  y, prob, first = predict(model, splits.test)
  pred = prob.argmax(axis=1)
  p, r, f1, support = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
  cm = confusion_matrix(y, pred, labels=labels)
  rows = history_rows(folder)
  val_acc = None
  if splits.validation is not None:
    yv, probv, _ = predict(model, splits.validation)
    val_acc = float((probv.argmax(axis=1) == yv).mean())
  metrics = {
      "test_accuracy": float((pred == y).mean()),
      "test_examples": int(len(y)),
      "validation_accuracy": val_acc,
      "per_speaker": {s: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f1[i]),
                          "support": int(support[i])} for i, s in enumerate(speakers)},
      "macro_f1": float(f1.mean()),
      "confusion_matrix": cm.tolist(),
      "speakers": speakers,
      "channels": config.channels,
      "model": config.model,
      "parameters": int(model.count_params()),
      "dataset": dataset_identity(splits.dataset.builder),
      "image_size": splits.dataset.image_size,
      "epochs_scheduled": result.epochs,
      "epochs_run": len(rows) or len(result.history.history.get("loss", [])),
      # The epoch whose weights were kept (and evaluated): the last that
      # improved the monitored loss by at least trainer.train.MIN_DELTA.
      "best_epoch": result.best_epoch,
      "fusion": _fusion_effect(result.network or model, splits.test, y, result.fusion_weights),
      "pooling": config.pooling,
      "backend": _backend_effect(result, config, splits.test, y),
      "batch_size": config.batch_size,
      "seed": config.seed,
      "device": result.device,
      "keras_backend": result.keras_backend,
      "precision": result.precision,
      "train_seconds_this_run": round(result.seconds, 1),
  }
  metrics["open_set_threshold_95"] = write_speaker_profiles(splits, folder)
  metrics["test_predictions"], by_check = write_predictions(splits, y, prob, folder)
  metrics.update(by_check)
  with open(os.path.join(folder, "metrics.json"), "w") as f:
    json.dump(metrics, f, indent=1)
  plot_confusion(cm, speakers, os.path.join(folder, "confusion_matrix.png"))
  plot_curves(rows, os.path.join(folder, "training_curves.png"))
  plot_samples(first, pred[:len(first[1])], speakers, config.channels,
               os.path.join(folder, "samples.png"))
  return metrics


PREDICTIONS_FILE = "test_predictions.csv"


# The build report's checks a run marks its test clips by: (the CSV's column,
# metrics.json's key, the name there of the clips the check names).
FLAGS = (("rare_rate", "test_by_sample_rate", "rare_for_their_speaker"),
         ("unlike_pitch", "test_by_pitch", "unlike_their_speakers_training"))
EITHER = ("test_by_build_checks", "named_by_either")   # metrics.json: both checks at once


def flagged_recordings(data_dir) -> dict[str, set[str] | None]:
  """{column of FLAGS: the recordings that the dataset's build report (in
  `data_dir`, the dataset version's folder) names}: `rare_rate`, at a
  sample rate rare for their speaker (pipeline.report.setup_checks, its
  rule run over the report's file list where it counted some);
  `unlike_pitch`, held out at a pitch unlike their speaker's training
  recordings (the pitch check's list). None for a check the report does
  not hold (it is not there, or predates it), or (saying so) for both when
  it cannot be read."""
  from etils import epath

  from pipeline.report import PITCH_CHECK, RARE_RATE_CHECK, REPORT_FILE, rare_rate_records

  out = {column: None for column, _, _ in FLAGS}
  path = epath.Path(data_dir) / REPORT_FILE
  if not path.exists():
    return out
  try:
    with path.open(encoding="utf-8") as f:
      report = json.load(f)
    checks = report.get("checks", {})
    rare, pitch = checks.get(RARE_RATE_CHECK), checks.get(PITCH_CHECK)
    if rare is not None:
      out["rare_rate"] = ({r["file"] for r in rare_rate_records(report["files"])[0]}
                          if rare["count"] else set())
    if pitch is not None:
      out["unlike_pitch"] = {r["file"] for r in pitch["recordings"]}
    return out
  except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
    print(f"{PREDICTIONS_FILE}: {' and '.join(out)} left empty, {path} unreadable "
          f"({type(e).__name__}: {e})", flush=True)
    return {column: None for column in out}


def write_predictions(splits, y, prob, folder: str) -> tuple[str | None, dict]:
  """test_predictions.csv: every test clip (recording, clip index) with its
  speaker, the speaker predicted, that prediction's probability, whether
  it is right, and whether the build report's checks name its recording
  (FLAGS: `rare_rate`, at a sample rate rare for its speaker;
  `unlike_pitch`, at a pitch unlike its speaker's training recordings; 1
  or 0, empty without the check), wrong ones first, then by recording: the
  errors to read. Returns (the file's name, {metrics.json's key of each
  check, and `test_by_build_checks` of the two at once: the test clips
  right among the recordings it names and among the rest, or None without
  the check}); (None, those keys None), saying why,
  if the split's clips cannot be matched to the labels evaluated."""
  from trainer.data import clip_keys

  keys = clip_keys(splits.dataset, "test") if splits.dataset is not None else []
  if [k[2] for k in keys] != [int(v) for v in y]:
    print("test_predictions.csv not written: the test clips' order differs from the "
          "evaluated labels'", flush=True)
    return None, dict.fromkeys([key for _, key, _ in FLAGS] + [EITHER[0]])
  flagged = flagged_recordings(splits.dataset.builder.data_dir)
  speakers, pred = splits.speakers, prob.argmax(axis=1)
  rows = sorted(((r, c, speakers[t], speakers[p], round(float(prob[i, p]), 4), int(p == t),
                  *("" if flagged[column] is None else int(r in flagged[column])
                    for column, _, _ in FLAGS))
                 for i, ((r, c, t), p) in enumerate(zip(keys, pred))),
                key=lambda row: (row[5], row[0], row[1]))
  with open(os.path.join(folder, PREDICTIONS_FILE), "w", newline="", encoding="utf-8") as f:
    out = csv.writer(f)
    out.writerow(["recording", "clip_index", "speaker", "predicted", "probability", "right",
                  *(column for column, _, _ in FLAGS)])
    out.writerows(rows)
  scores = {key: None if flagged[column] is None else
            _named_and_the_rest(rows, name, lambda row, k=k: row[6 + k] == 1)
            for k, (column, key, name) in enumerate(FLAGS)}
  scores[EITHER[0]] = (None if any(flagged[column] is None for column, _, _ in FLAGS) else
                       _named_and_the_rest(rows, EITHER[1], lambda row: 1 in row[6:]))
  return PREDICTIONS_FILE, scores



def _named_and_the_rest(rows, name: str, named) -> dict:
  """{name: recordings, clips, clips right and accuracy of the rows for
  which named(row) holds; the_rest: of the others}."""
  out = {}
  for part_name, flag in ((name, True), ("the_rest", False)):
    part = [row for row in rows if bool(named(row)) == flag]
    right = sum(row[5] for row in part)
    out[part_name] = {"recordings": len({row[0] for row in part}), "clips": len(part),
                      "right": right, "accuracy": right / len(part) if part else None}
  return out


def write_speaker_profiles(splits, folder: str) -> float:
  """speakers.json: each speaker's descriptor profile over the training
  split and the distance within which 95 % of validation clips (test clips
  without a validation split) lie from their own speaker: what
  `trainer.predict --threshold auto` accepts (trainer.openset). Returns
  that threshold."""
  from trainer import openset
  from trainer.data import descriptor_arrays

  d, y = descriptor_arrays(splits.dataset, "train")
  model = openset.fit(d, y, splits.speakers)
  held = "validation" if splits.validation is not None else "test"
  limit = openset.threshold(model, *descriptor_arrays(splits.dataset, held), splits.speakers)
  with open(os.path.join(folder, CENTROIDS_FILE), "w") as f:
    json.dump({**model, "threshold_95": limit, "held_out_split": held,
               "note": "distance of a clip's red-plane descriptors to its speaker's training "
                       "profile (trainer/openset.py); threshold_95 accepts 95 % of held-out "
                       "clips"}, f)
  return limit


def plot_confusion(cm, speakers, path):
  plt = pyplot()
  n = len(speakers)
  fig, ax = plt.subplots(figsize=(max(4, 0.35 * n + 2), max(3.5, 0.35 * n + 1.5)))
  ax.imshow(cm, cmap="Blues")
  ax.set_xlabel("predicted speaker")
  ax.set_ylabel("true speaker")
  if n <= 40:
    ax.set_xticks(range(n), speakers, rotation=90, fontsize=7)
    ax.set_yticks(range(n), speakers, fontsize=7)
  if n <= 20:
    for i in range(n):
      for j in range(n):
        ax.text(j, i, cm[i, j], ha="center", va="center", fontsize=8,
                color="white" if cm[i, j] > cm.max() / 2 else "black")
  ax.set_title(f"test confusion matrix ({cm.sum()} clips)")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_curves(rows, path):
  plt = pyplot()
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
  epochs = [r["epoch"] + 1 for r in rows]
  for ax, key in zip(axes, ("loss", "accuracy")):
    ax.plot(epochs, [r.get(key) for r in rows], "o-", label="train")
    if rows and f"val_{key}" in rows[0]:
      ax.plot(epochs, [r.get(f"val_{key}") for r in rows], "o-", label="validation")
    ax.set_xlabel("epoch")
    ax.set_title(key)
    ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def as_rgb(image, channels: str):
  """Puts the selected channels back in their R, G, B places for display."""
  out = np.zeros(image.shape[:2] + (3,), np.uint8)
  for k, c in enumerate(CHANNELS[channels]):
    out[..., c] = image[..., k]
  return out


def plot_samples(first, pred, speakers, channels, path, n=16):
  plt = pyplot()
  images, labels = first
  n = min(n, len(images))
  cols = 4
  rows = (n + cols - 1) // cols
  fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.8 * rows), squeeze=False)
  for i, ax in enumerate(axes.flat):
    ax.axis("off")
    if i < n:
      ax.imshow(as_rgb(images[i], channels))
      ok = "" if pred[i] == labels[i] else f" (pred {speakers[pred[i]]})"
      ax.set_title(speakers[labels[i]] + ok, fontsize=8, color="black" if not ok else "red")
  fig.suptitle(f"test inputs, channels {channels}")
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)
