"""Speaker recognition's classical back end on a trained embedding (numpy only).

Linear discriminant analysis, as speaker recognition scores x-vectors: each
speaker a Gaussian with its own mean and one covariance shared by all,
fitted on the training clips' embeddings. Its posterior is a softmax of
linear scores,

    score_k(e) = e . S^-1 m_k  -  m_k . S^-1 m_k / 2  +  log prior_k

so it replaces the network's own softmax layer by a dense layer with these
weights (models.with_lda_head) and the saved model predicts as before.
The network's softmax is trained to separate the training clips; LDA
measures how far apart the speakers are relative to how much each one's
clips spread in the embedding, and it is the spread that unseen clips meet.
"""

from __future__ import annotations

import numpy as np

RIDGE = 1e-3   # added to the covariance's diagonal, relative to its mean variance


def fit_lda(embeddings: np.ndarray, labels: np.ndarray, classes: int,
            ridge: float = RIDGE) -> tuple[np.ndarray, np.ndarray]:
  """(weights (dim, classes), biases (classes,)) of LDA's linear scores.

  The shared covariance is pooled within speakers (its maximum-likelihood
  estimate, as scikit-learn's); `ridge` keeps it
  invertible when some embedding units never fire (ReLU units that stayed
  off: a zero variance). Priors are the speakers' shares of the training
  clips, as the network's softmax learns them. A speaker without training
  clips gets the overall mean and a score that never wins."""
  e = np.asarray(embeddings, np.float64)
  y = np.asarray(labels, np.int64)
  counts = np.bincount(y, minlength=classes)
  means = np.zeros((classes, e.shape[1]))
  np.add.at(means, y, e)
  present = counts > 0
  means[present] /= counts[present, None]
  means[~present] = e.mean(axis=0)
  centred = e - means[y]
  cov = centred.T @ centred / max(len(e), 1)                # maximum likelihood
  cov[np.diag_indices_from(cov)] += ridge * max(np.trace(cov) / len(cov), 1e-12)
  weights = np.linalg.solve(cov, means.T)
  with np.errstate(divide="ignore"):
    prior = np.where(present, np.log(counts / max(counts.sum(), 1)), -np.inf)
  biases = -0.5 * np.einsum("kd,dk->k", means, weights) + np.maximum(prior, -1e4)
  return weights, biases
