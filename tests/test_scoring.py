"""trainer.scoring: EER and minDCF as the field computes them, checked against
independent computations on fixed scores."""

import numpy as np
import pytest

from trainer import scoring


def brute_force(scores, labels, p_target):
  """Every threshold tried one by one, each trial counted in a plain loop."""
  best_eer, best_gap, best_dcf = None, np.inf, np.inf
  targets = [s for s, y in zip(scores, labels) if y]
  others = [s for s, y in zip(scores, labels) if not y]
  for t in sorted(set(scores)) + [np.inf]:
    miss = sum(s < t for s in targets) / len(targets)
    fa = sum(s >= t for s in others) / len(others)
    if abs(miss - fa) < best_gap:
      best_gap, best_eer = abs(miss - fa), (miss + fa) / 2
    best_dcf = min(best_dcf, (miss * p_target + fa * (1 - p_target))
                   / min(p_target, 1 - p_target))
  return best_eer, best_dcf


@pytest.mark.parametrize("seed,ties", [(0, False), (1, True), (2, False)])
def test_eer_and_min_dcf_equal_independent_computations(seed, ties):
  rng = np.random.default_rng(seed)
  labels = rng.uniform(size=400) < 0.3
  scores = rng.normal(size=400) + 1.5 * labels
  if ties:
    scores = np.round(scores, 1)               # many trials share a score
  eer, _ = scoring.equal_error_rate(scores, labels)
  for p in (0.01, 0.05):
    want_eer, want_dcf = brute_force(list(scores), list(labels), p)
    assert eer == pytest.approx(want_eer, abs=1e-6)
    assert scoring.min_dcf(scores, labels, p) == pytest.approx(want_dcf, abs=1e-6)
  # scikit-learn's ROC: the same false-alarm and hit rates at its thresholds.
  from sklearn.metrics import roc_curve

  fpr, tpr, thresholds = roc_curve(labels, scores)
  ours_t, miss, fa = scoring.error_rates(scores, labels)
  for f, t, th in zip(fpr[1:], tpr[1:], thresholds[1:]):
    k = int(np.searchsorted(ours_t, th))
    assert fa[k] == pytest.approx(f, abs=1e-12) and 1 - miss[k] == pytest.approx(t, abs=1e-12)


def test_known_scores():
  labels = np.array([1, 1, 1, 0, 0, 0], bool)
  assert scoring.equal_error_rate([0.9, 0.8, 0.7, 0.1, 0.2, 0.3], labels)[0] == 0.0
  assert scoring.min_dcf([0.9, 0.8, 0.7, 0.1, 0.2, 0.3], labels, 0.01) == 0.0
  eer, _ = scoring.equal_error_rate([0.9, 0.2, 0.7, 0.8, 0.1, 0.3], labels)
  assert eer == pytest.approx(1 / 3)
  # Everything rejected costs p_target, normalised to 1: the worst a threshold can do.
  assert scoring.min_dcf([0.1, 0.2, 0.3, 0.7, 0.8, 0.9], labels, 0.01) == pytest.approx(1.0)
  with pytest.raises(ValueError):
    scoring.equal_error_rate([0.1, 0.2], [True, True])


def test_adaptive_snorm_centres_each_side_on_its_cohort():
  """A test embedding close to many cohort speakers (a 'generic' voice)
  scores high against everyone; s-norm takes that away, so a true target
  trial outranks it."""
  rng = np.random.default_rng(0)
  cohort = rng.normal(size=(50, 16))
  generic = cohort[:40].mean(axis=0)                     # near most of the cohort
  speaker = rng.normal(size=16)
  enrol = np.stack([speaker, speaker])
  test = np.stack([speaker + 0.8 * rng.normal(size=16), generic * 3 + speaker * 0.5])
  raw = scoring.cosine(enrol, test)
  normed = scoring.adaptive_snorm(raw, enrol, test, cohort, top=10)
  assert normed[0] > normed[1]
  # One side's statistics by hand, for the first trial.
  unit = lambda v: v / np.linalg.norm(v)
  c = np.array([unit(v) for v in cohort])
  top_e = np.sort(c @ unit(enrol[0]))[-10:]
  top_t = np.sort(c @ unit(test[0]))[-10:]
  want = 0.5 * ((raw[0] - top_e.mean()) / top_e.std() + (raw[0] - top_t.mean()) / top_t.std())
  assert normed[0] == pytest.approx(want, rel=1e-6)
