"""The baselines every image network is measured against, on the same splits:

* `descriptors_logreg`: logistic regression on the 94 red-plane statistics
  (the dataset's `descriptors`, before quantisation);
* `egemaps_logreg`: the same regression on openSMILE's eGeMAPS v02
  functionals of each clip's audio (trainer.egemaps): what a speech
  scientist would use;
* `logmel`: the speech field's usual network, an x-vector-style TDNN
  (trainer.networks.build_logmel_model) on 64-band log-mel spectrograms of
  each clip's audio, trained by `trainer.train.train` like every network.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from trainer.clip_audio import clip_waveforms


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


def logreg_accuracy(train, test, seed: int, speakers: list[int] | None = None) -> float:
  """Test accuracy of a standardised logistic regression on feature rows
  ((x, y) of each split), optionally on a subset of speakers."""
  from sklearn.linear_model import LogisticRegression

  (x, y), (xt, yt) = train, test
  if speakers:
    x, y = x[np.isin(y, speakers)], y[np.isin(y, speakers)]
    xt, yt = xt[np.isin(yt, speakers)], yt[np.isin(yt, speakers)]
  clf, keep = standardised(x, y, LogisticRegression(max_iter=5000, random_state=seed))
  return float(clf.score(xt[:, keep], yt))


def descriptor_logreg_accuracy(dataset, seed: int, speakers: list[int] | None = None) -> float:
  from trainer.data import descriptor_arrays

  return logreg_accuracy(descriptor_arrays(dataset, "train"), descriptor_arrays(dataset, "test"),
                         seed, speakers)


@functools.lru_cache(maxsize=8)
def egemaps_features(dataset, data_dir, split):
  """(88 eGeMAPS v02 functionals per clip, labels, audio source): the same
  clips the images were made from, described by the speech sciences' standard set."""
  from trainer import egemaps

  waves, labels, source = clip_waveforms(dataset, data_dir, split)
  return egemaps.functionals(waves)[1], labels, source


def egemaps_logreg_accuracy(dataset, data_dir, seed: int,
                            speakers: list[int] | None = None) -> tuple[float, str]:
  """(test accuracy, note) of logistic regression on eGeMAPS functionals."""
  x, y, source = egemaps_features(dataset, data_dir, "train")
  xt, yt, _ = egemaps_features(dataset, data_dir, "test")
  return (logreg_accuracy((x, y), (xt, yt), seed, speakers),
          f"openSMILE eGeMAPSv02 functionals (88) of the {source}")


def log_mel(waves, rate: int = 16000) -> np.ndarray:
  """(clips, 64 bands, frames, 1) log-mel power in dB: 32 ms windows every 10 ms."""
  import librosa

  mel = librosa.feature.melspectrogram(y=waves, sr=rate, n_fft=512, hop_length=160, n_mels=64)
  return librosa.power_to_db(mel, ref=1.0, top_db=None)[..., None].astype(np.float32)


def logmel_splits(dataset, data_dir, batch_size: int, seed: int, edit=None):
  """(trainer.data.Splits of log-mel spectrograms, where the audio came
  from): the dataset's clips, its splits, its labels. `edit(mel, waves)`,
  if given, returns the spectrograms to use in place of each split's."""
  from trainer import data

  def arrays(split):
    if split not in dataset.info.splits or not dataset.info.splits[split].num_examples:
      return None, None
    waves, labels, source = clip_waveforms(dataset, data_dir, split)
    mel = log_mel(waves, dataset.spec.sample_rate)
    return ((edit(mel, waves) if edit else mel), labels), source

  (train, source), (validation, _), (test, _) = (arrays(s) for s in
                                                 ("train", "validation", "test"))
  return data.from_arrays(train, validation, test, dataset.speakers, batch_size, seed), source


def logmel_accuracy(dataset, data_dir, config) -> tuple[float, str]:
  """(test accuracy, note) of the log-mel TDNN trained with `config`'s
  protocol (schedule, early stopping, back end) through trainer.train."""
  from trainer import networks, report
  from trainer.train import train

  splits, source = logmel_splits(dataset, data_dir, config.batch_size, config.seed)
  result = train(dataclasses.replace(config, model=networks.LOGMEL), splits=splits, verbose=0)
  return report.accuracy(result.model, splits.test), f"log-mel of the {source}"
