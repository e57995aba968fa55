"""trainer.train: the GPU's precision, checked on the CPU."""

import numpy as np
import pytest

from pipeline.spec import DEFAULT_SPEC as S


def test_mixed_precision_loss_matches_float32_on_a_fixed_batch():
  """The GPU's mixed float16 computes the same loss as float32, to float16's
  precision, from the same weights on the same batch (checked on CPU)."""
  import keras

  from trainer.networks import build_model

  x = np.random.default_rng(2).integers(0, 255, (8, 128, 128, 3)).astype(np.float32)
  y = np.arange(8) % 4
  loss = keras.losses.SparseCategoricalCrossentropy()
  keras.utils.set_random_seed(0)
  reference = build_model("cells", S, 128, "rgb", 4)
  want = float(loss(y, reference(x, training=False)))
  keras.mixed_precision.set_global_policy("mixed_float16")
  try:
    mixed = build_model("cells", S, 128, "rgb", 4)
    mixed.set_weights(reference.get_weights())
    got = float(loss(y, mixed(x, training=False)))
  finally:
    keras.mixed_precision.set_global_policy("float32")
  assert got == pytest.approx(want, rel=2e-2)


@pytest.mark.slow
def test_mixed_precision_path_runs_on_cpu():
  """The GPU configuration (mixed float16) builds and trains a step here too,
  with float32 probabilities out."""
  import keras

  from trainer.networks import build_model

  keras.mixed_precision.set_global_policy("mixed_float16")
  try:
    for name in ("paper", "cells"):
      model = build_model(name, S, 64, "rgb", 4)
      model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
      x = np.random.default_rng(0).integers(0, 255, (8, 64, 64, 3)).astype(np.float32)
      model.train_on_batch(x, np.arange(8) % 4)
      probs = model.predict(x, verbose=0)
      assert probs.dtype == np.float32 and np.allclose(probs.sum(axis=1), 1, atol=1e-3)
      assert model.get_layer("embedding").compute_dtype == "float16"
  finally:
    keras.mixed_precision.set_global_policy("float32")
