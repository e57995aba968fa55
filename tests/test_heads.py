"""trainer.heads: the LDA back end, folded into the saved model."""

import numpy as np

from pipeline.spec import DEFAULT_SPEC as S


def _speakers(rng, classes=5, dim=8, per=40):
  means = rng.normal(scale=2.0, size=(classes, dim))
  mix = rng.normal(size=(dim, dim))                     # one shared, correlated spread
  y = np.repeat(np.arange(classes), per)
  return means[y] + rng.normal(size=(len(y), dim)) @ mix, y


def test_lda_posteriors_are_sklearns():
  """Scores softmaxed are the posteriors of scikit-learn's LDA (priors from
  the class counts, unequal here) on the same embeddings."""
  from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

  from trainer.heads import fit_lda

  rng = np.random.default_rng(0)
  e, y = _speakers(rng)
  keep = np.ones(len(y), bool)
  keep[:25] = False                                      # speaker 0: 15 clips, the others 40
  e, y = e[keep], y[keep]
  w, b = fit_lda(e, y, 5, ridge=0.0)
  test = _speakers(np.random.default_rng(1))[0]
  scores = test @ w + b
  ours = np.exp(scores - scores.max(axis=1, keepdims=True))
  ours /= ours.sum(axis=1, keepdims=True)
  reference = LinearDiscriminantAnalysis(solver="lsqr").fit(e, y).predict_proba(test)
  np.testing.assert_allclose(ours, reference, atol=1e-8)


def test_lda_survives_dead_units_and_absent_speakers():
  """Embedding units that never fire (zero variance) need the ridge; a
  speaker with no training clip is never the answer."""
  from trainer.heads import fit_lda

  rng = np.random.default_rng(2)
  e, y = _speakers(rng, classes=4)
  e = np.concatenate([e, np.zeros((len(e), 3))], axis=1)   # three dead ReLU units
  w, b = fit_lda(e, y, 5)                                  # speaker 4: no clips
  assert np.all(np.isfinite(w)) and np.all(np.isfinite(b))
  pred = (e @ w + b).argmax(axis=1)
  assert (pred == y).mean() > 0.9 and not np.any(pred == 4)


def _network_and_lda(seed: int):
  """(images, labels, their tf.data split, an untrained `cells` network on
  them, the same with LDA fitted on them): 48 random 64 px images of 3
  speakers."""
  import tensorflow as tf

  from trainer.heads import with_lda_head
  from trainer.networks import build_model

  rng = np.random.default_rng(seed)
  x = rng.integers(0, 256, (48, 64, 64, 3)).astype(np.uint8)
  y = np.arange(48) % 3
  train = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
  network = build_model("cells", S, 64, "rgb", 3)
  return x, y, train, network, with_lda_head(network, train, 3)


def test_lda_head_is_the_network_up_to_its_embedding(tmp_path):
  """with_lda_head keeps the trained network up to `embedding` and puts
  LDA's scores on top: its output is softmax(embedding @ W + b) with W, b
  from fit_lda on the training split's embeddings; saved and loaded, it
  predicts the same."""
  import keras

  from trainer.heads import embeddings_of, fit_lda

  x, y, train, network, lda = _network_and_lda(seed=3)
  assert lda.get_layer("embedding") is network.get_layer("embedding")
  e, labels = embeddings_of(network, train)
  np.testing.assert_array_equal(labels, y)
  w, b = fit_lda(e, labels, 3)
  scores = e @ w + b
  expected = np.exp(scores - scores.max(axis=1, keepdims=True))
  expected /= expected.sum(axis=1, keepdims=True)
  got = np.asarray(lda.predict(x.astype(np.float32), verbose=0))
  np.testing.assert_allclose(got, expected, atol=1e-4)
  lda.save(tmp_path / "m.keras")
  again = keras.saving.load_model(tmp_path / "m.keras", compile=False)
  np.testing.assert_allclose(again.predict(x.astype(np.float32), verbose=0), got, atol=1e-6)


def _fixed(logits):
  """A model that answers softmax(x @ logits) for one-hot inputs x."""
  import keras

  inputs = keras.Input((len(logits),))
  layer = keras.layers.Dense(len(logits[0]), use_bias=False, activation="softmax")
  model = keras.Model(inputs, layer(inputs))
  layer.set_weights([np.asarray(logits, np.float32)])
  return model


def test_backend_auto_keeps_the_average_unless_one_alone_is_clearly_better():
  """--backend auto: the average of the softmax's and LDA's log-posteriors,
  unless the softmax or LDA alone is right on at least 2 % and at least 2
  more validation clips; one clip more, a tie or no validation split keeps
  the average. Both alone clearly better: the one with more clips right,
  LDA on a tie. The record holds each candidate's numbers and the margin."""
  from trainer.heads import choose_backend

  x = np.eye(3, dtype=np.float32)
  right = [[4, 0, 0], [0, 4, 0], [0, 0, 4]]
  unsure = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
  one_wrong = [[4, 0, 0], [0, 4, 0], [4, 0, 0]]
  two_wrong = [[4, 0, 0], [4, 0, 0], [4, 0, 0]]
  held_out = [(x[:2], np.array([0, 1])), (x[2:], np.array([2]))]

  def choose(softmax, lda, average, split=held_out):
    return choose_backend({"softmax": _fixed(softmax), "lda": _fixed(lda),
                           "average": _fixed(average)}, split)

  chosen, record = choose(right, two_wrong, two_wrong)
  assert chosen == "softmax" and record["chosen"] == "softmax" and record["margin_clips"] == 2
  assert record["validation"]["lda"]["accuracy"] == 1 / 3
  assert record["validation"]["softmax"]["right"] == 3
  assert record["validation"]["average"]["clips"] == 3
  p = np.exp(4) / (np.exp(4) + 2)
  assert np.isclose(record["validation"]["softmax"]["cross_entropy"], -np.log(p), atol=1e-5)
  assert choose(two_wrong, right, two_wrong)[0] == "lda"
  assert choose(right, right, two_wrong)[0] == "lda"           # both clearly better: LDA on a tie
  assert choose(right, one_wrong, two_wrong)[0] == "softmax"   # ... else the one with more right
  assert choose(right, two_wrong, one_wrong)[0] == "average"   # one clip more: not enough
  chosen, record = choose(right, right, unsure)
  assert chosen == "average"                  # as many right: the surer ones do not win
  assert record["validation"]["softmax"]["cross_entropy"] < \
      record["validation"]["average"]["cross_entropy"]
  assert choose_backend({"softmax": _fixed(right), "lda": _fixed(right),
                         "average": _fixed(two_wrong)}, None)[0] == "average"
  big = [(np.tile(x, (50, 1)), np.tile(np.array([0, 1, 2]), 50))]        # 150 clips: 3 needed
  assert choose(right, right, right, big)[1]["margin_clips"] == 3


def test_average_head_is_the_geometric_mean_of_softmax_and_lda(tmp_path):
  """with_average_head answers softmax((log p_softmax + log p_lda) / 2): the
  two posteriors' geometric mean, renormalised, from one pass through the
  shared embedding; its argmax is the product's. Saved and loaded, it
  predicts the same."""
  import keras

  from trainer.heads import with_average_head

  x, _, _, network, lda = _network_and_lda(seed=4)
  average = with_average_head(network, lda)
  images = x.astype(np.float32)
  own, by_lda = (np.asarray(m.predict(images, verbose=0), np.float64) for m in (network, lda))
  log_mean = (np.log(np.maximum(own, 1e-300)) + np.log(np.maximum(by_lda, 1e-300))) / 2
  expected = np.exp(log_mean - log_mean.max(axis=1, keepdims=True))
  expected /= expected.sum(axis=1, keepdims=True)
  got = np.asarray(average.predict(images, verbose=0))
  np.testing.assert_allclose(got, expected, atol=1e-4)
  np.testing.assert_array_equal(got.argmax(axis=1), (own * by_lda).argmax(axis=1))
  assert average.get_layer("embedding") is network.get_layer("embedding")
  average.save(tmp_path / "m.keras")
  again = keras.saving.load_model(tmp_path / "m.keras", compile=False)
  np.testing.assert_allclose(again.predict(images, verbose=0), got, atol=1e-6)
