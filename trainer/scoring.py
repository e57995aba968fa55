"""Speaker verification scores and the field's error measures (numpy only).

    eer, thresholds = equal_error_rate(scores, labels)
    min_dcf(scores, labels, p_target=0.01)           # C_miss = C_fa = 1, normalised

As NIST SRE and the VoxCeleb challenges define them: a trial is accepted
when its score is at least the threshold; the miss rate at threshold t is
the share of target trials scored below t, the false-alarm rate the share
of non-target trials scored at or above it. The detection cost

    DCF(t) = C_miss * P_miss(t) * p_target + C_fa * P_fa(t) * (1 - p_target)

is divided by min(C_miss * p_target, C_fa * (1 - p_target)), the cost of
the better of accepting or rejecting everything, and minimised over t.
"""

from __future__ import annotations

import numpy as np


def error_rates(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(thresholds, miss rates, false-alarm rates) at every distinct score,
  plus one threshold above the highest (everything rejected)."""
  scores = np.asarray(scores, np.float64)
  labels = np.asarray(labels, bool)
  if labels.all() or not labels.any():
    raise ValueError("trials need both target and non-target pairs")
  order = np.argsort(scores, kind="stable")
  s, y = scores[order], labels[order]
  thresholds, first = np.unique(s, return_index=True)
  # Trials below each threshold: those before its first occurrence in sorted order.
  targets_below = np.concatenate([[0], np.cumsum(y)])[first]
  nontargets_below = np.concatenate([[0], np.cumsum(~y)])[first]
  n_target, n_non = y.sum(), (~y).sum()
  miss = np.append(targets_below / n_target, 1.0)
  false_alarm = np.append(1.0 - nontargets_below / n_non, 0.0)
  return np.append(thresholds, np.inf), miss, false_alarm


def equal_error_rate(scores, labels) -> tuple[float, float]:
  """(EER, threshold): where the miss and false-alarm curves cross, the
  mean of the two rates at the threshold where they are closest (the
  convention of the VoxCeleb and SpeechBrain scoring scripts)."""
  thresholds, miss, false_alarm = error_rates(scores, labels)
  k = int(np.argmin(np.abs(miss - false_alarm)))
  return float((miss[k] + false_alarm[k]) / 2), float(thresholds[k])


def min_dcf(scores, labels, p_target: float, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
  """The normalised minimum detection cost over every threshold."""
  _, miss, false_alarm = error_rates(scores, labels)
  cost = c_miss * miss * p_target + c_fa * false_alarm * (1 - p_target)
  return float(cost.min() / min(c_miss * p_target, c_fa * (1 - p_target)))


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Row-wise cosine of two (trials, dim) arrays."""
  a = np.asarray(a, np.float64)
  b = np.asarray(b, np.float64)
  return np.einsum("nd,nd->n", a, b) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
                                        + 1e-12)


def adaptive_snorm(scores, enrol, test, cohort, top: int = 200) -> np.ndarray:
  """Adaptive symmetric score normalisation (Matejka et al. 2017, as
  WeSpeaker scores VoxCeleb): each side of a trial is scored against the
  cohort's embeddings, its `top` highest cohort scores give a mean and a
  standard deviation, and the trial's score is normalised by each side's
  and the two averaged. `enrol`, `test`: the trials' embeddings, (trials,
  dim); `cohort`: (speakers or clips, dim)."""
  cohort = np.asarray(cohort, np.float64)
  cohort = cohort / (np.linalg.norm(cohort, axis=1, keepdims=True) + 1e-12)
  top = max(1, min(top, len(cohort)))

  def stats(e):
    e = np.asarray(e, np.float64)
    e = e / (np.linalg.norm(e, axis=1, keepdims=True) + 1e-12)
    against = np.sort(e @ cohort.T, axis=1)[:, -top:]
    return against.mean(axis=1), against.std(axis=1) + 1e-12

  (me, se), (mt, st) = stats(enrol), stats(test)
  scores = np.asarray(scores, np.float64)
  return 0.5 * ((scores - me) / se + (scores - mt) / st)
