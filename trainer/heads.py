"""What comes after the network is trained: score fusion fitted on held-out
clips, embeddings, and speaker recognition's classical back end (LDA).

Linear discriminant analysis, as speaker recognition scores x-vectors: each
speaker a Gaussian with its own mean and one covariance shared by all,
fitted on the training clips' embeddings. Its posterior is a softmax of
linear scores,

    score_k(e) = e . S^-1 m_k  -  m_k . S^-1 m_k / 2  +  log prior_k

so it replaces the network's own softmax layer by a dense layer with these
weights (`with_lda_head`) and the saved model predicts as before.
The network's softmax is trained to separate the training clips; LDA
measures how far apart the speakers are relative to how much each one's
clips spread in the embedding, and it is the spread that unseen clips meet.

The two err on different clips, so the default back end scores with both:
the average of their log-posteriors (`with_average_head`), a score-level
fusion with equal weights, unless one of them alone is clearly better on
the validation split (`choose_backend`).
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers

from trainer.layers import Fusion

RIDGE = 1e-3   # added to the covariance's diagonal, relative to its mean variance


def fit_lda(embeddings: np.ndarray, labels: np.ndarray, classes: int,
            ridge: float = RIDGE, covariance=None) -> tuple[np.ndarray, np.ndarray]:
  """(weights (dim, classes), biases (classes,)) of LDA's linear scores.

  The shared covariance is pooled within speakers (its maximum-likelihood
  estimate, as scikit-learn's); `ridge` keeps it
  invertible when some embedding units never fire (ReLU units that stayed
  off: a zero variance). `covariance`, a function of the embeddings
  centred on their speakers' means, estimates it otherwise (a shrinkage
  estimator: benchmarks/back_ends.py). Priors are the speakers' shares of
  the training clips, as the network's softmax learns them. A speaker
  without training clips gets the overall mean and a score that never wins."""
  e = np.asarray(embeddings, np.float64)
  y = np.asarray(labels, np.int64)
  counts = np.bincount(y, minlength=classes)
  means = np.zeros((classes, e.shape[1]))
  np.add.at(means, y, e)
  present = counts > 0
  means[present] /= counts[present, None]
  means[~present] = e.mean(axis=0)
  centred = e - means[y]
  if covariance is None:
    cov = centred.T @ centred / max(len(e), 1)              # maximum likelihood
    cov[np.diag_indices_from(cov)] += ridge * max(np.trace(cov) / len(cov), 1e-12)
  else:
    cov = covariance(centred)
  weights = np.linalg.solve(cov, means.T)
  with np.errstate(divide="ignore"):
    prior = np.where(present, np.log(counts / max(counts.sum(), 1)), -np.inf)
  biases = -0.5 * np.einsum("kd,dk->k", means, weights) + np.maximum(prior, -1e4)
  return weights, biases


def _arrays(x):
  """A batch's inputs (a tensor, or a tuple of them, from tf.data) as numpy
  arrays: what any Keras backend takes."""
  return keras.tree.map_structure(np.asarray, x)


def _numpy(tensor) -> np.ndarray:
  """A backend's tensor as float64 numpy, fetched from its device (a CUDA
  tensor of PyTorch has no `__array__` that copies it)."""
  return keras.ops.convert_to_numpy(tensor).astype(np.float64)


def fusion_layer(model: keras.Model) -> Fusion | None:
  return next((layer for layer in model.layers if isinstance(layer, Fusion)), None)


def calibrate_fusion(model: keras.Model, held_out) -> list[float] | None:
  """Fits the Fusion weights of `model` on a held-out tf.data split of
  (images, labels): the non-negative weights minimising the cross-entropy
  of the fused softmax. A group whose evidence does not generalise (a
  waveform branch that memorised its training clips) gets little weight;
  the overall scale is the fusion's temperature. Returns the weights (None
  for a model without fusion)."""
  import scipy.optimize

  fusion = fusion_layer(model)
  if fusion is None:
    return None
  evidence = keras.Model(model.input, fusion.input)
  parts, labels = [], []
  for x, y in held_out:
    # Called directly (eagerly): one network per training in a study, and a
    # traced predict function per network would be retraced every time.
    parts.append(np.stack([_numpy(e) for e in evidence(_arrays(x), training=False)], 1))
    labels.append(np.asarray(y))
  e, y = np.concatenate(parts), np.concatenate(labels)       # (n, groups, classes), (n,)
  rows = np.arange(len(y))

  def loss(w):
    z = np.einsum("ngc,g->nc", e, w)
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    total = p.sum(axis=1)
    grad_z = p / total[:, None]
    grad_z[rows, y] -= 1
    return (np.log(total) - z[rows, y]).mean(), np.einsum("nc,ngc->g", grad_z, e) / len(y)

  fit = scipy.optimize.minimize(loss, np.ones(e.shape[1]), jac=True, method="L-BFGS-B",
                                bounds=[(0.0, None)] * e.shape[1])
  fusion.scale.assign(fit.x.astype(np.float32))
  return [float(v) for v in fit.x]


def embeddings_of(model: keras.Model, split) -> tuple[np.ndarray, np.ndarray]:
  """(embeddings, labels) of a tf.data split of (images, labels): the
  output of the model's `embedding` layer, at inference (no dropout)."""
  embed = keras.Model(model.input, model.get_layer("embedding").output)
  parts, labels = [], []
  for x, y in split:
    # Called eagerly, as calibrate_fusion does: one network per training in a study.
    parts.append(_numpy(embed(_arrays(x), training=False)))
    labels.append(np.asarray(y))
  return np.concatenate(parts), np.concatenate(labels)


def with_lda_head(model: keras.Model, train, classes: int) -> keras.Model:
  """The trained network with its softmax replaced by LDA's (`fit_lda`),
  fitted on the embeddings of the training split `train`: a model from the
  same input through the same embedding to a dense softmax layer named
  `speaker`, saved and loaded like any other."""
  weights, biases = fit_lda(*embeddings_of(model, train), classes)
  head = layers.Dense(classes, activation="softmax", dtype="float32", name="speaker")
  outputs = head(model.get_layer("embedding").output)
  head.set_weights([weights.astype(np.float32), biases.astype(np.float32)])
  return keras.Model(model.input, outputs, name=model.name)


def with_average_head(network: keras.Model, lda: keras.Model) -> keras.Model:
  """The network's softmax and LDA's (`with_lda_head`) in one model: the
  average of their log-posteriors, renormalised (the geometric mean of the
  two posteriors), out of a softmax layer named `speaker`. Both heads read
  the same embedding, computed once; LDA's weights are copied from `lda`."""
  weights = lda.get_layer("speaker").get_weights()
  embedding = network.get_layer("embedding").output
  own = layers.Activation("log_softmax", dtype="float32", name="softmax_log_posterior")(
      network.get_layer("speaker").input)
  lda_head = layers.Dense(len(weights[1]), activation="log_softmax", dtype="float32",
                          name="lda_log_posterior")
  average = layers.Average(dtype="float32", name="average_log_posterior")(
      [own, lda_head(embedding)])
  outputs = layers.Activation("softmax", dtype="float32", name="speaker")(average)
  lda_head.set_weights(weights)
  return keras.Model(network.input, outputs, name=network.name)


def posteriors(model: keras.Model, split) -> tuple[np.ndarray, np.ndarray]:
  """(the model's posteriors, the labels) on a split of (images, labels)."""
  probs, labels = [], []
  for x, y in split:
    # Called eagerly, as calibrate_fusion does: two new models per training,
    # whose traced predict functions would be retraced (and warned about).
    probs.append(_numpy(model(_arrays(x), training=False)))
    labels.append(np.asarray(y))
  if not probs:
    return np.zeros((0, 0)), np.zeros(0, np.int64)
  return np.concatenate(probs), np.concatenate(labels)


def held_out_scores(model: keras.Model, held_out) -> dict:
  """Accuracy and mean cross-entropy (nats) of `model` on a split of
  (images, labels)."""
  prob, y = posteriors(model, held_out)
  n = len(y)
  if not n:
    return {"accuracy": 0.0, "cross_entropy": 0.0, "clips": 0}
  right = int((prob.argmax(axis=1) == y).sum())
  loss = float(-np.log(np.clip(prob[np.arange(n), y], 1e-12, 1.0)).sum())
  return {"accuracy": right / n, "cross_entropy": loss / n, "clips": n}


# How many more validation clips one back end alone must get right than the
# average of both to be kept: a share of the validation split, and never
# fewer than MARGIN_CLIPS.
MARGIN_SHARE, MARGIN_CLIPS = 0.02, 2
SINGLE = ("lda", "softmax")   # on a tie of their leads, LDA


def choose_backend(candidates: dict, held_out) -> tuple[str, dict]:
  """`--backend auto`: the average of the softmax's and LDA's log-posteriors
  (`candidates["average"]`) unless the network's own softmax or LDA alone
  (`candidates["softmax"]`, `candidates["lda"]`) is right on clearly more
  clips of the validation split than the average: at least 2 % of them,
  and at least 2. A clip or two is no evidence: a validation split of a
  hundred clips or so is near its ceiling, and the kept epoch and the
  fusion weights were both chosen on these same clips, which LDA (fitted on the training clips)
  never saw (docs/training.md measures that lean). Without a validation
  split, the average. Returns (the chosen name, the record metrics.json
  keeps: the rule, each candidate's validation accuracy, cross-entropy and
  clips right)."""
  if held_out is None:
    return "average", {"chosen": "average", "why": "no validation split"}
  scores = {name: held_out_scores(model, held_out) for name, model in candidates.items()}
  for v in scores.values():
    v["right"] = round(v["accuracy"] * v["clips"])
  chosen, margin = rule({name: v["right"] for name, v in scores.items()},
                        scores["average"]["clips"])
  return chosen, {"chosen": chosen, "validation": scores, "margin_clips": margin,
                  "why": "the average of the softmax's and LDA's log-posteriors unless one "
                         "alone is right on at least margin_clips more validation clips"}


def rule(right: dict, clips: int) -> tuple[str, int]:
  """choose_backend's rule on the validation clips right per back end, out
  of `clips`: (the chosen name, the margin in clips)."""
  margin = max(MARGIN_CLIPS, math.ceil(MARGIN_SHARE * clips))
  best = max(SINGLE, key=lambda name: right[name])      # ties to the first: LDA
  return (best if right[best] - right["average"] >= margin else "average"), margin
