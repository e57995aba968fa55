"""trainer.egemaps: openSMILE's functionals, in a process of their own."""

import numpy as np
import pytest


def test_egemaps_functionals_measure_a_known_pitch():
  from trainer import egemaps

  t = np.arange(2 * egemaps.RATE) / egemaps.RATE
  harmonics = lambda f: sum(np.sin(2 * np.pi * k * f * t) / k for k in range(1, 6))
  waves = np.stack([0.3 * harmonics(f) for f in (110.0, 220.0)]).astype(np.float32)
  names, values = egemaps.functionals(waves)
  assert len(names) == 88 and values.shape == (2, 88)
  f0 = values[:, names.index("F0semitoneFrom27.5Hz_sma3nz_amean")]
  # openSMILE reports f0 in semitones above 27.5 Hz: 24 for 110 Hz, 36 for 220 Hz.
  assert f0 == pytest.approx([24.0, 36.0], abs=0.5)
