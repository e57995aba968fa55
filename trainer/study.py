"""Shared pieces of the studies (ablation, scaling, reconstruction): the same
protocol for every row, and one way to write JSON + Markdown + a plot."""

from __future__ import annotations

import functools
import json
import os
import sys

import numpy as np

from trainer.report import dataset_identity as identity
from trainer.report import predict

__all__ = ["identity", "summary", "write_table", "image_cnn_accuracy",
           "descriptor_logreg_accuracy", "egemaps_logreg_accuracy", "logmel_cnn_accuracy",
           "clip_waveforms"]


def add_training_flags(parser, skip=("output", "seed", "dataset", "data_dir")):
  """The training settings every study trains with (trainer.config), one
  definition for all; the dataset, `--output` and seeds are each study's own."""
  from trainer.config import TrainConfig

  TrainConfig.add_flags(parser, skip=skip)


def config_of(args, **override):
  """The TrainConfig of a study's arguments, with per-row settings."""
  from trainer.config import TrainConfig

  return TrainConfig.from_args(args, output=None, **override)


def checked_config(parser, args):
  """`config_of(args)`, or the parser's one-line error before anything runs."""
  try:
    return config_of(args)
  except ValueError as e:
    parser.error(str(e))


def open_dataset_or_exit(name: str, data_dir: str | None):
  """(builder, data dir) of a built dataset, or exit 2 with the command that builds it."""
  from trainer import data

  data_dir = data_dir or os.environ.get("TFDS_DATA_DIR")
  try:
    return data.open_dataset(name, data_dir), data_dir
  except data.DatasetUnusable as e:
    print(f"error: {e}", file=sys.stderr)
    raise SystemExit(2) from None


def summary(accuracies) -> dict:
  a = np.asarray(accuracies, np.float64)
  return {"accuracy_mean": float(a.mean()),
          "accuracy_std": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
          "accuracies": [float(v) for v in a], "n_seeds": int(len(a))}


def image_cnn_accuracy(config, speakers: list[int] | None = None) -> float:
  """Test accuracy of `train(config)` (optionally on a subset of speakers)."""
  from trainer.train import train

  result = train(config, speakers=speakers, verbose=0)
  labels, prob, _ = predict(result.model, result.splits.test)
  return float((prob.argmax(axis=1) == labels).mean())


@functools.lru_cache(maxsize=8)
def descriptor_arrays(builder, split):
  import tensorflow_datasets as tfds

  ds = builder.as_dataset(split=split, decoders={"image": tfds.decode.SkipDecoding()})
  rows = [(ex["descriptors"], ex["speaker"]) for ex in tfds.as_numpy(ds)]
  return np.stack([r[0] for r in rows]), np.array([r[1] for r in rows])


def standardised(x, y, *then):
  """(fitted pipeline, columns kept): feature rows standardised on `x` (NaN ->
  training median; a feature never defined carries nothing and is dropped),
  then the estimators `then`. Other rows go through it as `rows[:, keep]`."""
  from sklearn.impute import SimpleImputer
  from sklearn.pipeline import make_pipeline
  from sklearn.preprocessing import StandardScaler

  keep = ~np.isnan(x).all(axis=0)
  return make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                       *then).fit(x[:, keep], y), keep


def _logreg_accuracy(train, test, seed: int, speakers: list[int] | None) -> float:
  """Standardised logistic regression on feature rows."""
  from sklearn.linear_model import LogisticRegression

  (x, y), (xt, yt) = train, test
  if speakers:
    x, y = x[np.isin(y, speakers)], y[np.isin(y, speakers)]
    xt, yt = xt[np.isin(yt, speakers)], yt[np.isin(yt, speakers)]
  clf, keep = standardised(x, y, LogisticRegression(max_iter=5000, random_state=seed))
  return float(clf.score(xt[:, keep], yt))


def descriptor_logreg_accuracy(builder, seed: int, speakers: list[int] | None = None) -> float:
  """Logistic regression on the 94 red-plane statistics (the dataset's `descriptors`)."""
  return _logreg_accuracy(descriptor_arrays(builder, "train"),
                          descriptor_arrays(builder, "test"), seed, speakers)


@functools.lru_cache(maxsize=8)
def egemaps_features(builder, data_dir, split):
  """(88 eGeMAPS v02 functionals per clip, labels, audio source): the same
  clips the images were made from, described by the speech sciences' standard set."""
  from trainer import egemaps

  waves, labels, source = clip_waveforms(builder, data_dir, split)
  return egemaps.functionals(waves)[1], labels, source


def egemaps_logreg_accuracy(builder, data_dir, seed: int,
                            speakers: list[int] | None = None) -> tuple[float, str]:
  """(test accuracy, note) of logistic regression on eGeMAPS functionals."""
  x, y, source = egemaps_features(builder, data_dir, "train")
  xt, yt, _ = egemaps_features(builder, data_dir, "test")
  return (_logreg_accuracy((x, y), (xt, yt), seed, speakers),
          f"openSMILE eGeMAPSv02 functionals (88) of the {source}")


def corpus_root(builder, data_dir) -> str | None:
  """Where the dataset's audio is, if this machine can read it."""
  from pipeline import demo

  source = str(builder.info.metadata.get("input", ""))
  if source.startswith("built-in:"):
    name = source.split(":", 1)[1]
    corpus = demo.CORPORA.get(name)
    if corpus is None or corpus.fingerprint() != builder.info.metadata.get("corpus_fingerprint"):
      return None  # built from another version of the corpus than this code makes
    downloads = os.path.join(data_dir or os.path.expanduser("~/tensorflow_datasets"),
                             "downloads")
    return demo.materialise(corpus, downloads)
  if os.path.isfile(source):
    return os.path.dirname(source)
  return source if os.path.isdir(source) else None


@functools.lru_cache(maxsize=8)
def clip_waveforms(builder, data_dir, split):
  """(16 kHz clips zero-padded to clip length, labels, where the audio came from).

  The original recordings when this machine can read them; otherwise the
  waveform decoded from each image's green plane."""
  import tensorflow_datasets as tfds

  from pipeline.audio import load_audio, resample
  from pipeline.clips import segment
  from pipeline.encode import decode_green
  from pipeline.spec import EncodingSpec

  spec = EncodingSpec.from_dict(dict(builder.info.metadata["encoding"]))
  root = corpus_root(builder, data_dir)
  waves, labels = [], []
  for ex in tfds.as_numpy(builder.as_dataset(split=split)):
    path = os.path.join(root, ex["recording"].decode()) if root else None
    if path and os.path.exists(path):
      x = segment(load_audio(path, spec), spec)[int(ex["clip_index"])].samples
    else:
      root = None
      y, rate = decode_green(ex["image"], spec)
      x = resample(y, rate, spec.sample_rate)
    w = np.zeros(spec.clip_samples, np.float32)
    w[:min(len(x), len(w))] = x[:len(w)]
    waves.append(w)
    labels.append(ex["speaker"])
  source = "original recordings" if root else "green plane"
  return np.stack(waves), np.array(labels), source


def _log_mel(waves):
  import librosa

  mel = librosa.feature.melspectrogram(y=waves, sr=16000, n_fft=512, hop_length=160, n_mels=64)
  return librosa.power_to_db(mel, ref=1.0, top_db=None)[..., None].astype(np.float32)


def logmel_cnn_accuracy(builder, data_dir, config):
  """(test accuracy, note) of the x-vector-style TDNN (models.build_logmel_model)
  on log-mel spectrograms, trained with the same schedule sizing and early
  stopping, scored with the same back end (config.backend)."""
  import keras

  from trainer.models import build_logmel_model, compile_model
  from trainer.train import early_stopping, epochs_for

  keras.backend.clear_session()
  keras.utils.set_random_seed(config.seed)
  (xw, y, source), (xtw, yt, _) = (clip_waveforms(builder, data_dir, s) for s in ("train", "test"))
  x, xt = _log_mel(xw), _log_mel(xtw)
  has_val = "validation" in builder.info.splits and builder.info.splits["validation"].num_examples
  val = None
  if has_val:
    xvw, yv, _ = clip_waveforms(builder, data_dir, "validation")
    val = (_log_mel(xvw), yv)
  model = build_logmel_model(x.shape[1], x.shape[2], builder.info.features["speaker"].num_classes)
  model.get_layer(index=1).adapt(x)
  steps = -(-len(x) // config.batch_size)
  epochs = config.epochs or epochs_for(steps)
  compile_model(model, config.learning_rate, decay_steps=epochs * steps)
  model.fit(x, y, validation_data=val, epochs=epochs, batch_size=config.batch_size, verbose=0,
            callbacks=[early_stopping("val_loss" if val is not None else "loss",
                                      config.patience)])
  if config.backend == "lda":                 # the same back end as the image CNN's
    import tensorflow as tf

    from trainer.models import with_lda_head

    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(config.batch_size)
    model = with_lda_head(model, train, builder.info.features["speaker"].num_classes)
  predicted = np.argmax(model.predict(xt, batch_size=config.batch_size, verbose=0), axis=1)
  return float((predicted == yt).mean()), f"log-mel of the {source}"


def write_table(output: str, stem: str, results: dict, protocol: dict, title: str):
  """<stem>.json (the rows), <stem>_protocol.json, <stem>.md and <stem>.png."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  with open(os.path.join(output, f"{stem}.json"), "w") as f:
    json.dump(results, f, indent=1)
  with open(os.path.join(output, f"{stem}_protocol.json"), "w") as f:
    json.dump(protocol, f, indent=1)
  lines = [f"### {title}", "",
           f"Test accuracy, mean +- std over {protocol.get('seeds', 1)} seeds "
           f"({protocol.get('test_examples', '?')} test clips, "
           f"{protocol.get('speakers', '?')} speakers, model {protocol.get('model', '-')}, "
           + (f"<= {protocol['epochs']} epochs" if isinstance(protocol.get("epochs"), int)
              else "epochs sized from the dataset") + ").", "",
           "| row | accuracy | std | per seed |", "|---|---|---|---|"]
  for row, r in results.items():
    lines.append(f"| {row} | {r['accuracy_mean']:.3f} | {r['accuracy_std']:.3f} | "
                 + ", ".join(f"{a:.3f}" for a in r["accuracies"]) + " |")
  for key, note in protocol.get("notes", {}).items():
    lines.append(f"\n{key}: {note}.")
  with open(os.path.join(output, f"{stem}.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  fig, ax = plt.subplots(figsize=(1.2 * len(results) + 2, 3.5))
  names = list(results)
  ax.bar(names, [results[n]["accuracy_mean"] for n in names],
         yerr=[results[n]["accuracy_std"] for n in names], capsize=4, color="#4a7ab5")
  ax.set_ylim(0, 1.05)
  ax.set_ylabel("test accuracy")
  ax.set_title(title, fontsize=9)
  plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
  fig.tight_layout()
  fig.savefig(os.path.join(output, f"{stem}.png"), dpi=100)
  plt.close(fig)
