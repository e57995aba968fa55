"""Speech synthesis with the eSpeak NG engine shipped by the `espeakng-loader` wheel.

A minimal ctypes binding: synchronous synthesis into memory, no audio device,
no network. Used to make the demo corpus and test fixtures.
"""

from __future__ import annotations

import ctypes
import functools
import threading

import numpy as np

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAMS = {"rate": 1, "volume": 2, "pitch": 3, "range": 4, "wordgap": 7}
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.c_void_p)
_lock = threading.Lock()
_chunks: list[np.ndarray] = []


@_CALLBACK
def _collect(wav, n, events):
  if n > 0 and wav:
    _chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
  return 0


class EspeakUnavailable(RuntimeError):
  pass


@functools.lru_cache(maxsize=1)
def _engine():
  try:
    import espeakng_loader
  except ImportError as e:
    raise EspeakUnavailable("pip install espeakng-loader") from e
  lib = ctypes.CDLL(espeakng_loader.get_library_path())
  lib.espeak_Initialize.restype = ctypes.c_int
  lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
  lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
  lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
  lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                               ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
  data_parent = espeakng_loader.get_data_path().rsplit("/", 1)[0]
  rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_parent.encode(), 0)
  if rate <= 0:
    raise EspeakUnavailable(f"espeak_Initialize failed ({rate})")
  lib.espeak_SetSynthCallback(_collect)
  return lib, rate


def synthesize(text: str, voice: str = "en", rate: int = 175, pitch: int = 50,
               pitch_range: int = 50) -> tuple[np.ndarray, int]:
  """Speaks `text` with an eSpeak NG voice ("en+f3", "en-us+m2", ...).

  rate is in words per minute, pitch and pitch_range 0..100. Returns
  (float32 mono waveform, sample rate). Not bit-exact: the engine carries
  state from one utterance to the next (its length can change by a few
  samples), and even the same calls in a fresh process can give other
  sample values from run to run. pipeline.demo writes each corpus once and
  keeps it.
  """
  lib, sample_rate = _engine()
  with _lock:
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
      raise ValueError(f"unknown eSpeak NG voice {voice!r}")
    for name, value in (("rate", rate), ("pitch", pitch), ("range", pitch_range)):
      lib.espeak_SetParameter(_PARAMS[name], int(value), 0)
    _chunks.clear()
    data = text.encode("utf-8") + b"\0"
    lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
    lib.espeak_Synchronize()
    pcm = np.concatenate(_chunks) if _chunks else np.zeros(0, np.int16)
    _chunks.clear()
  return (pcm.astype(np.float32) / 32768.0), sample_rate
