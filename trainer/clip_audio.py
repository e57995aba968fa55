"""The audio of a dataset's clips, for what needs sound rather than images
(the eGeMAPS and log-mel baselines, the reconstruction study).

The original recordings when this machine can read the corpus the dataset
was built from; otherwise each clip's waveform decoded from its green plane.
"""

from __future__ import annotations

import functools
import os

import numpy as np


def corpus_root(dataset, data_dir) -> str | None:
  """Where the dataset's audio is, if this machine can read it."""
  from pipeline import demo

  metadata = dataset.info.metadata
  source = str(metadata.get("input", ""))
  if source.startswith("built-in:"):
    corpus = demo.CORPORA.get(source.split(":", 1)[1])
    if corpus is None or corpus.fingerprint() != metadata.get("corpus_fingerprint"):
      return None  # built from another version of the corpus than this code makes
    downloads = os.path.join(data_dir or os.path.expanduser("~/tensorflow_datasets"),
                             "downloads")
    return demo.materialise(corpus, downloads)
  if os.path.isfile(source):
    return os.path.dirname(source)
  return source if os.path.isdir(source) else None


@functools.lru_cache(maxsize=8)
def clip_waveforms(dataset, data_dir, split):
  """(clips at the working rate zero-padded to clip length, labels, where
  the audio came from: 'original recordings' or 'green plane')."""
  import tensorflow_datasets as tfds

  from pipeline.audio import resample
  from pipeline.clips import clips_of
  from pipeline.encode import decode_green

  spec = dataset.spec
  root = corpus_root(dataset, data_dir)
  waves, labels, cut = [], [], {}
  for ex in tfds.as_numpy(dataset.builder.as_dataset(split=split)):
    path = os.path.join(root, ex["recording"].decode()) if root else None
    if path and os.path.exists(path):
      if path not in cut:
        cut.clear()   # examples of one recording are few: one at a time is enough
        cut[path] = clips_of(path, spec)
      x = cut[path][int(ex["clip_index"])].samples
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
