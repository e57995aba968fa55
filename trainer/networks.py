"""The speaker networks: the paper's CNN, `cells` (which reads the encoding's
planes the way they were written), and the log-mel TDNN baseline.

    model = build_model("cells", spec, image_size, "rgb", num_classes)

Every trainer run builds its network here, through trainer.train.train.
"""

from __future__ import annotations

import keras
from keras import layers

from pipeline.planes import silence_pixel
from pipeline.spec import TRACKS, EncodingSpec
from trainer.config import MODELS, POOLINGS
from trainer.layers import (CellReader, Columns, Fusion, GreenWaveform, LogCompress, Magnitude,
                            MaskedStatistics, MeanOver, Planes, MeasuredMean, RecordedSamples,
                            TimeStd, TrackLevels)

TRACK_NAMES = [t.name for t in TRACKS]
LOGMEL = "logmel"   # the baseline network, on log-mel inputs (trainer.baselines)


def compile_model(model: keras.Model, learning_rate: float, decay_steps: int | None = None,
                  jit_compile: bool = False) -> keras.Model:
  """Adam; with `decay_steps`, the rate follows a cosine from `learning_rate`
  to 0. `jit_compile` compiles the training step with XLA."""
  if decay_steps:
    learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
  model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                jit_compile=jit_compile)
  return model


def speaker_posteriors(x, num_classes: int):
  """The output of every network: linear scores (`logits`), then the softmax
  layer `speaker`, both in float32 also under mixed precision (stable
  probabilities). The scores stay reachable as the softmax's input, for the
  back ends that combine them with LDA's (trainer.heads)."""
  logits = layers.Dense(num_classes, dtype="float32", name="logits")(x)
  return layers.Activation("softmax", dtype="float32", name="speaker")(logits)


def _track_levels(tracks, red: int, levels: int, pooling: str = "all"):
  """Per descriptor track: its red statistics (if read), the mean of its blue
  time course, and a learned soft histogram of the course: the mean over
  frames of `levels` ReLU thresholds of each value, shifted by the track's
  red statistics (pixel 0, undefined, is included as itself: how much of a
  clip a track is defined on is information too). `pooling="voiced"` adds
  the same histogram over the frames where pitch is defined;
  `pooling="recorded"` takes histogram and mean over the frames the tracks
  were measured on only (a clip's active frames), not over pauses or the
  padding of a clip shorter than the clip length."""
  stats = Columns(0, red, name="red_stats")(tracks) if red else None
  course = Columns(red, None, name="blue_course")(tracks)                 # (47, L)
  voiced = TRACK_NAMES.index("f0") if pooling == "voiced" else None
  recorded = pooling == "recorded"
  soft = TrackLevels(levels, voiced_track=voiced, measured_only=recorded, name="soft_histogram")(
      [course, stats] if stats is not None else [course])                # (47, levels)
  mean = (MeasuredMean(name="course_mean") if recorded else
          MeanOver(2, keepdims=True, name="course_mean"))(course)
  return layers.Concatenate()([p for p in (stats, mean, soft) if p is not None])


def _waveform_branch(g, spec: EncodingSpec, image_size: int, dropout: float, bands: int = 48,
                     recorded=None):
  """Green as a 1-D signal: a learnable filterbank (4 ms kernels every 1 ms),
  its magnitudes averaged into 10 ms frames and log-compressed; two 1-D conv
  blocks over the frames; mean and standard deviation over time (a voice is
  the same wherever in the clip it speaks). ~100x fewer operations than 2-D
  convolutions over a plane that is a folded waveform. `recorded`: (the
  stored image, the green plane's channel in it): the statistics over the
  frames that hold recorded audio only, not a short clip's padding (its
  frames pooled as the signal's are)."""
  unfold = GreenWaveform.for_spec(spec, name="green_waveform")
  rate = unfold.rate(image_size)
  stride = max(1, round(0.001 * rate))
  x = unfold(g)
  x = layers.Conv1D(bands, max(4, round(0.004 * rate)), strides=stride,
                    padding="same", use_bias=False, name="filterbank")(x)
  x = Magnitude()(x)
  pools = [10]                     # each pooling over time after the filterbank, in order
  x = layers.AveragePooling1D(pools[-1], name="frames_10ms")(x)
  x = LogCompress()(layers.Rescaling(100.0)(x))
  for filters in (96, 128):
    x = layers.Conv1D(filters, 5, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)
    x = layers.ReLU()(x)
    pools.append(2)
    x = layers.MaxPooling1D(pools[-1])(x)
  x = layers.Dropout(dropout)(x)
  if recorded is not None:
    image, channel = recorded
    mask = RecordedSamples(silence_pixel(spec), unfold.pool(image_size), channel,
                           name="recorded")(image)
    # A frame holds recorded audio if any of its samples does: the mask
    # is pooled as the signal was (filterbank steps, then `pools`).
    mask = layers.MaxPooling1D(stride, padding="same")(mask)
    for size in pools:
      mask = layers.MaxPooling1D(size)(mask)
    return MaskedStatistics(name="green_stats")([x, mask])
  return layers.Concatenate(name="green_stats")([layers.GlobalAveragePooling1D()(x),
                                                 TimeStd()(x)])


def _conv_blocks(x, dropout: float):
  """The paper's four blocks: 3x3 conv (32, 64, 128, 256 filters), batch
  norm, ReLU, 2x2 max pool, dropout.

  Dropout in front of the next block's batch normalisation makes it learn the
  variance of dropped-out activations, which inference never sees ("variance
  shift", Li et al. 2019: measured here, a log-mel CNN built so reached 100 %
  training accuracy and scored chance at inference); the paper's network
  keeps it as published, the other networks drop out only after their last
  block.
  """
  for filters in (32, 64, 128, 256):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    # momentum 0.9, not Keras's 0.99: a few hundred steps must be enough for the
    # moving statistics used at inference to catch up on small corpora.
    x = layers.BatchNormalization(momentum=0.9)(x)
    x = layers.Activation("relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Dropout(dropout)(x)
  return x


def _standardise(x):
  """Per-feature standardisation over the batch (inference: over the training set).

  Speakers differ by a few pixel levels around each cell's population mean:
  standardising each feature over the corpus keeps that level, where a
  per-clip normalisation (layer normalisation) would remove it."""
  return layers.BatchNormalization(momentum=0.9, name="standardise")(x)


def build_model(name: str, spec: EncodingSpec, image_size: int, planes: str, num_classes: int,
                dropout: float = 0.25, levels: int = 16, pooling: str = "all") -> keras.Model:
  """`planes`: the input's planes in order, a subset of "rgb" (e.g. "rb").
  `spec`: the encoding the images were written with (the dataset's, from
  trainer.data.open_dataset): every layer that reads a plane is built from it.

  `paper`: four conv blocks (32, 64, 128, 256 filters, batch norm, dropout),
  flatten, dense 256, softmax, as the paper describes.

  `cells`: reads the image the way it was written. Red and blue: the
  CellReader gathers per descriptor track its two red statistics and its
  blue time course; per track, a learned soft histogram of the course placed
  by its red statistics (`_track_levels`). Green, the waveform, read as the
  1-D signal it is (`_waveform_branch`). Each plane group is standardised
  and gets its own 128-unit embedding; the concatenated embeddings feed the
  softmax. `pooling="voiced"`: each track's histogram also over voiced
  frames (TrackLevels).
  """
  if pooling not in POOLINGS:
    raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
  if not planes or any(c not in "rgb" for c in planes):
    raise ValueError(f"planes must be letters of 'rgb', got {planes!r}")
  inputs = keras.Input((image_size, image_size, len(planes)), name="image")
  x = layers.Rescaling(1.0 / 255)(inputs)
  if name == "paper":
    x = _conv_blocks(x, dropout)
    x = layers.Flatten()(x)
    x = _standardise(x)
    x = layers.Dense(256, activation="relu", name="embedding")(x)
  elif name == "cells":
    parts = []
    stats = "".join(c for c in planes if c in "rb")
    if stats:
      s = x if len(stats) == len(planes) else Planes(
          [planes.index(c) for c in stats], name="red_blue")(x)
      tracks = CellReader(stats, spec.clip_frames, name="cell_reader")(s)  # (47, W)
      parts.append(layers.Flatten()(tracks if "b" not in stats else _track_levels(
          tracks, red=2 if "r" in stats else 0, levels=levels, pooling=pooling)))
    if "g" in planes:
      g = Planes([planes.index("g")], name="green")(x) if len(planes) > 1 else x
      parts.append(_waveform_branch(
          g, spec, image_size, dropout,
          recorded=(inputs, planes.index("g")) if pooling == "recorded" else None))
    if len(parts) == 1:
      x = _standardise(parts[0])
      x = layers.Dropout(0.2)(x)
      x = layers.Dense(128, activation="relu", name="embedding")(x)
    else:
      # Late fusion: each plane group its own embedding and evidence (logits),
      # added. Concatenated early, the waveform's weaker features diluted the
      # descriptors' (voices20, 128 px: 0.90 against 0.94 for red+blue alone).
      # (A dense layer over the concatenated embeddings is the sum of each
      # group's own evidence.)
      embeddings = [layers.Dense(128, activation="relu", name=f"embedding_{k}")(
          layers.Dropout(0.2)(layers.BatchNormalization(momentum=0.9,
                                                        name=f"standardise_{k}")(part)))
                    for k, part in enumerate(parts)]
      # Modality dropout: in training, half the clips go without their
      # waveform evidence, so the descriptors' are learnt in full rather than
      # left behind by the waveform's quick memorising of training clips.
      embeddings[-1] = layers.Dropout(0.5, noise_shape=(None, 1), name="drop_waveform")(
          embeddings[-1])
      x = layers.Dropout(0.5)(layers.Concatenate(name="embedding")(embeddings))
      # Each group's evidence (logits) from its own part of the embedding,
      # weighted and added (score-level fusion): the weights are 1 in training
      # and fitted on held-out clips afterwards (`calibrate_fusion`).
      evidence = [layers.Dense(num_classes, dtype="float32", name=f"evidence_{k}")(
          Columns(128 * k, 128 * (k + 1), name=f"embedding_part_{k}")(x))
                  for k in range(len(embeddings))]
      outputs = layers.Activation("softmax", dtype="float32", name="speaker")(
          Fusion(dtype="float32", name="fusion")(evidence))
      return keras.Model(inputs, outputs, name=f"a2i_{name}")
  else:
    raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
  x = layers.Dropout(0.5)(x)
  return keras.Model(inputs, speaker_posteriors(x, num_classes), name=f"a2i_{name}")


def build_logmel_model(n_mels: int, frames: int, num_classes: int,
                       dropout: float = 0.25, width: int = 128) -> keras.Model:
  """Baseline: the speech field's usual network on log-mel features, an
  x-vector-style TDNN (Snyder et al. 2018): 1-D convolutions over frames with
  the mel bands as channels (context 5, then dilated 3x3 and 3x3, then 1x1),
  statistics pooling (mean and standard deviation over time), a 128-unit
  embedding, softmax."""
  inputs = keras.Input((n_mels, frames, 1), name="log_mel")
  x = layers.Normalization(axis=None, name="normalise")(inputs)   # adapted by trainer.train
  x = layers.Reshape((frames, n_mels))(layers.Permute((2, 1, 3))(x))
  for filters, kernel, dilation in ((width, 5, 1), (width, 3, 2), (width, 3, 3),
                                    (2 * width, 1, 1)):
    x = layers.Conv1D(filters, kernel, dilation_rate=dilation, padding="same",
                      use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)
    x = layers.ReLU()(x)
  x = layers.Concatenate(name="statistics")([layers.GlobalAveragePooling1D()(x), TimeStd()(x)])
  x = layers.Dropout(dropout)(x)
  x = layers.Dense(128, activation="relu", name="embedding")(x)
  x = layers.Dropout(0.5)(x)
  return keras.Model(inputs, speaker_posteriors(x, num_classes), name="a2i_logmel")
