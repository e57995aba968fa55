"""Is this voice one of the trained speakers at all? (numpy only)

The classifier is closed-set: its softmax names a trained speaker whoever
speaks, with probability 1.000 for a tone as easily as for a voice. The
open-set answer asks a different question of the clip's 94 red-plane
statistics (pitch, HNR, spectral shape, MFCC... before quantisation):

    distance = RMS over descriptors of (z - mean_k) / std_k

where z is the clip's descriptors standardised over the training split and
mean_k, std_k describe speaker k's training clips in that space. A clip
farther than the threshold from the speaker the classifier chose is
"unknown". `threshold_95` is the distance within which 95 % of held-out
clips lie from their own speaker.
"""

from __future__ import annotations

import numpy as np

STD_FLOOR = 0.1   # in units of the corpus spread: a speaker's narrowest descriptor


def fit(descriptors: np.ndarray, labels: np.ndarray, speakers: list[str]) -> dict:
  """Profiles of each speaker (with training clips) from training descriptors."""
  d = np.nan_to_num(np.asarray(descriptors, np.float64))
  mean, std = d.mean(axis=0), d.std(axis=0) + 1e-9
  z = (d - mean) / std
  profiles = {}
  for k, name in enumerate(speakers):
    own = z[labels == k]
    if len(own):
      profiles[name] = {"mean": own.mean(axis=0).tolist(),
                        "std": (own.std(axis=0) + STD_FLOOR).tolist()}
  return {"descriptor_mean": mean.tolist(), "descriptor_std": std.tolist(),
          "speakers": profiles}


def distances(model: dict, descriptors: np.ndarray, speakers: list[str]) -> np.ndarray:
  """Distance of each row of `descriptors` to the profile of `speakers[i]`
  (inf for a speaker without training clips)."""
  d = np.nan_to_num(np.atleast_2d(np.asarray(descriptors, np.float64)))
  z = (d - np.asarray(model["descriptor_mean"])) / np.asarray(model["descriptor_std"])
  out = np.full(len(d), np.inf)
  for i, name in enumerate(speakers):
    profile = model["speakers"].get(name)
    if profile is not None:
      out[i] = float(np.sqrt(np.mean(((z[i] - profile["mean"]) / profile["std"]) ** 2)))
  return out


def threshold(model: dict, descriptors: np.ndarray, labels: np.ndarray,
              speakers: list[str], accept: float = 0.95) -> float:
  """The distance that accepts `accept` of these (held-out) clips as their own speaker."""
  own = distances(model, descriptors, [speakers[k] for k in labels])
  own = own[np.isfinite(own)]
  return float(np.quantile(own, accept)) if len(own) else float("inf")
