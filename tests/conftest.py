"""Shared fixtures: real decoded speech from eSpeak NG voices, real human speech."""

import pytest

from pipeline.audio import to_working_rate
from pipeline.espeak import synthesize

SENTENCE = "The birch canoe slid on the smooth planks, glue the sheet to the dark blue background."


@pytest.fixture(scope="session")
def speech():
  """voice -> 16 kHz float32 speech, about 5 s, from two voices of different pitch."""
  out = {}
  for voice, pitch in (("en+m3", 25), ("en+f3", 80)):
    x, rate = synthesize(SENTENCE, voice, rate=150, pitch=pitch)
    out[voice] = to_working_rate(x, rate)
  return out


@pytest.fixture(scope="session")
def real_speech(tmp_path_factory):
  """Folder of real human speech: KLettres (20 speakers) and alsa-utils (1),
  assembled by benchmarks/corpora/klettres.sh from Debian's packages, once
  per machine (A2I_REAL_SPEECH or ~/.cache/a2i/real_speech)."""
  import os
  import pathlib
  import subprocess

  root = pathlib.Path(os.environ.get("A2I_REAL_SPEECH",
                                     pathlib.Path.home() / ".cache" / "a2i" / "real_speech"))
  if not (root / "klettres").is_dir() or not (root / "alsa-utils").is_dir():
    script = pathlib.Path(__file__).parent.parent / "benchmarks" / "corpora" / "klettres.sh"
    out = subprocess.run(["bash", str(script), str(root)], capture_output=True, text=True)
    if out.returncode != 0:
      pytest.skip(f"real speech unavailable here: {out.stderr.strip()[-300:]}")
  return root
