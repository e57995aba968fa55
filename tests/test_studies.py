"""benchmarks/ studies: speaker_outliers.py's rule."""


def test_a_test_recording_unlike_its_speakers_training_ones_is_named_with_why():
  """benchmarks/speaker_outliers.py's rule: another sample rate than 90 % of
  the speaker's training recordings, or a median f0 over 3 robust standard
  deviations from theirs; a recording like them is not named."""
  from benchmarks.speaker_outliers import unlike

  facts = {f"a/{k}": {"speaker": "a", "split": "train", "sample_rate": 44100,
                      "f0_hz": 120 * 2 ** (((k % 5) - 2) / 12)} for k in range(20)}
  facts["a/other_setup"] = {"speaker": "a", "split": "test", "sample_rate": 8000, "f0_hz": 121}
  facts["a/other_voice"] = {"speaker": "a", "split": "test", "sample_rate": 44100, "f0_hz": 240}
  facts["a/usual"] = {"speaker": "a", "split": "test", "sample_rate": 44100, "f0_hz": 125}
  facts["a/unvoiced"] = {"speaker": "a", "split": "test", "sample_rate": 44100, "f0_hz": None}
  facts["a/held"] = {"speaker": "a", "split": "validation", "sample_rate": 8000, "f0_hz": 300}
  found = unlike(facts)
  assert set(found) == {"a/other_setup", "a/other_voice"}
  assert found["a/other_setup"]["why"] == ["sample_rate"]
  assert found["a/other_setup"]["training_rates"] == {"44100": 20}
  assert found["a/other_voice"]["why"] == ["f0"] and found["a/other_voice"]["f0_robust_z"] > 3
  assert abs(found["a/other_voice"]["training_f0_hz_median"] - 120) < 0.5
