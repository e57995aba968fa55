"""eGeMAPS v02 functionals by openSMILE: the classical baseline of the speech
sciences (Eyben et al. 2016, "The Geneva Minimalistic Acoustic Parameter Set").

openSMILE's native library and TensorFlow's do not share one process safely
(which one loads first decides whether the other aborts), so the functionals
are computed in a fresh interpreter that never imports TensorFlow.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing

import numpy as np

RATE = 16000


def _functionals(waves: np.ndarray) -> tuple[list[str], np.ndarray]:
  import opensmile

  smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                          feature_level=opensmile.FeatureLevel.Functionals)
  return (list(smile.feature_names),
          np.stack([smile.process_signal(w, RATE).to_numpy(np.float64)[0] for w in waves]))


def functionals(waves: np.ndarray) -> tuple[list[str], np.ndarray]:
  """(the 88 feature names, (clips, 88) values): eGeMAPS functionals of 16 kHz
  clips, computed in a child process."""
  with concurrent.futures.ProcessPoolExecutor(
      max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
    return pool.submit(_functionals, np.asarray(waves, np.float32)).result()
