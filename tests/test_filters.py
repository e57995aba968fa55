"""trainer.filters: a trained model's first filters."""

import json

import numpy as np
import pytest

from tests.helpers import cli


@pytest.mark.slow
def test_first_layer_filters(dataset, trained, tmp_path):
  cells, _ = trained
  cli("trainer.filters", "--model", str(cells / "model.keras"), "--output", str(tmp_path / "c"))
  with open(tmp_path / "c" / "filters.json") as f:
    bank = json.load(f)["green_filterbank"]
  # 64 px: a 1 kHz waveform; 48 filters, each peaking within its band.
  assert bank["rate_hz"] == 1000 and bank["filters"] == 48
  assert sum(bank["filters_per_band"].values()) == 48
  assert bank["peak_hz"] == sorted(bank["peak_hz"]) and 0 <= bank["peak_hz"][0]
  assert bank["peak_hz"][-1] <= 500
  fresh = json.load(open(tmp_path / "c" / "filters.json"))["at_initialisation"]
  assert fresh["filters"] == 48 and fresh["peak_hz"] != bank["peak_hz"]
  assert (tmp_path / "c" / "filters.png").stat().st_size
  data_dir, _ = dataset
  cli("trainer.fit", "--dataset", "a2i_speakers/three", "--data_dir", str(data_dir),
      "--output", str(tmp_path / "paper"), "--epochs", "1", "--model", "paper")
  cli("trainer.filters", "--model", str(tmp_path / "paper" / "model.keras"), "--output",
      str(tmp_path))
  with open(tmp_path / "filters.json") as f:
    planes = json.load(f)["planes"]
  assert list(planes) == ["R", "G", "B"]
  assert sum(p["weight_share"] for p in planes.values()) == pytest.approx(1.0)
  assert all(p["kernels"] == 32 for p in planes.values())
  assert (tmp_path / "filters.png").stat().st_size


def test_filterbank_description_finds_a_known_filter():
  from trainer.filters import describe_filterbank

  rate, taps = 4000.0, 64
  t = np.arange(taps) / rate
  tone = lambda f: np.hanning(taps) * np.cos(2 * np.pi * f * t)
  kernel = np.stack([tone(1500.0), tone(250.0), tone(700.0)], axis=-1)[:, None, :]
  stats = describe_filterbank(kernel, rate)
  assert stats["peak_hz"] == pytest.approx([250.0, 700.0, 1500.0], abs=rate / 1024)
  assert stats["filters_per_band"] == {"0-300 Hz": 1, "300-1000 Hz": 1, "1000-2000 Hz": 1}
  # A 64-tap Hann window: main lobe 4 bins wide, so about 2 bins above -6 dB.
  assert all(100 < w < 200 for w in stats["bandwidth_hz"])
