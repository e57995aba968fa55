"""Built-in demo corpora, synthesised on the spot with eSpeak NG (no download).

`demo` mirrors the paper: two speakers, 548 utterances each, every utterance
shorter than one clip so that the dataset holds exactly 1,096 clips.
`voices20` is the harder one for scaling studies: 20 voices, 60 utterances
each, every utterance degraded (speed, room, noise, level) so that speakers
are not told apart by recording conditions or trivially by the clean signal. Each
utterance draws its words, speaking rate and pitch from a generator seeded by
the speaker and utterance number, so the corpus is the same on every machine.
It is written as a folder-per-speaker tree of 22.05 kHz WAV files and then
built like any user corpus; beside a degraded corpus's folder, a JSON file
records the conditions each recording was made in (`recording_conditions`).

Reproducibility: eSpeak NG keeps state from one utterance to the next (the
flutter phase, for one), and its "breath" voice variants draw noise seeded by
the clock. So the corpora use no breath variant, and the synthesis runs in a
freshly spawned process, where the sequence of calls, and so every sample,
is the same on every run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import numpy as np
import soundfile as sf

from pipeline.espeak import synthesize

WORDS = (
    "the a of and to in is was it for on with as his that he by at from this had not are "
    "but be they or have one all were her there been when who will more no if out so said "
    "what up its about into than them can only other new some could time these two may then "
    "do first any my now such like our over man me even most made after also did many before "
    "must through back years where much your way well down should because each just those "
    "people how too little state good very make world still own see men work long get here "
    "between both life being under never day same another know while last might us great old "
    "year off come since against go came right used take three small river garden window "
    "morning evening winter summer village market station bridge yellow purple silver quiet "
    "gentle sudden careful bright heavy narrow ancient modern simple strange travel wander "
    "listen whisper gather follow borrow carry answer remember believe imagine discover "
    "finish kitchen letter pocket orange candle mountain forest island harbour castle"
).split()


@dataclasses.dataclass(frozen=True)
class Voice:
  speaker: str
  voice: str        # eSpeak NG voice and variant
  pitch: int        # base pitch 0..100, jittered per utterance
  rate: int = 165   # base words per minute, jittered per utterance


@dataclasses.dataclass(frozen=True)
class DemoCorpus:
  name: str
  voices: tuple[Voice, ...]
  utterances: int          # per speaker
  max_seconds: float = 4.0  # every utterance fits in one 4.096 s clip
  degrade: bool = False     # noise, reverberation, level and speed per utterance
  version: str = "1"

  def fingerprint(self) -> str:
    return hashlib.sha256(repr(self).encode()).hexdigest()[:16]


DEMO = DemoCorpus(
    name="demo",
    voices=(Voice("aria", "en-us+f4", 55), Voice("rachid", "en+m3", 40)),
    utterances=548)

_VARIANTS = ("f1", "f4", "Andrea", "anika", "belinda", "m1", "m2", "m3", "m4", "m5", "m6",
             "m7", "m8", "klatt", "klatt2", "klatt3", "klatt4", "Alex", "Annie", "Andy")
VOICES20 = DemoCorpus(
    name="voices20",
    voices=tuple(Voice(f"v{i:02d}_{v.lower()}", f"en+{v}", 20 + (i * 37) % 65)
                 for i, v in enumerate(_VARIANTS)),
    utterances=60, degrade=True)

CORPORA = {c.name: c for c in (DEMO, VOICES20)}


def room_response(sr: int, rt60: float, rng: np.random.Generator) -> np.ndarray:
  """An impulse response of a room: the direct sound (1.0) and exponentially
  decaying noise, 60 dB down after `rt60` seconds."""
  t = np.arange(int(rt60 * sr)) / sr
  ir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
  ir[0] = 1.0
  return ir


def background_noise(n: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
  """(n samples of noise, whether brown): white, or half of the time
  brown-ish (hum, traffic: integrated, its slow drift taken out)."""
  noise = rng.standard_normal(n)
  brown = bool(rng.random() < 0.5)
  if brown:
    noise = np.cumsum(noise)
    noise -= np.convolve(noise, np.ones(401) / 401, mode="same")
  return noise, brown


def with_noise(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
  """`x` plus `noise` scaled to `snr_db` under `x`'s power."""
  power = np.mean(x ** 2) + 1e-12
  return x + noise * np.sqrt(power / 10 ** (snr_db / 10) / (np.mean(noise ** 2) + 1e-12))


def at_peak(x: np.ndarray, peak_db: float) -> np.ndarray:
  """`x` scaled to a peak of `peak_db` dBFS."""
  return x / (np.abs(x).max() + 1e-12) * 10 ** (peak_db / 20)


def degrade(x: np.ndarray, sr: int, rng: np.random.Generator):
  """A recording made somewhere real: speed 0.9-1.1 (tempo and pitch), a room
  (exponentially decaying noise impulse response, RT60 0.1-0.7 s, half of the
  time), background noise at 5-30 dB SNR, and a level of -30..-3 dBFS peak.
  Returns the degraded audio and the conditions drawn."""
  import scipy.signal
  import soxr

  speed = rng.uniform(0.9, 1.1)
  x = soxr.resample(x, sr * speed, sr).astype(np.float32)
  rt60 = 0.0
  if rng.random() < 0.5:
    rt60 = rng.uniform(0.1, 0.7)
    ir = room_response(sr, rt60, rng)
    x = scipy.signal.fftconvolve(x, ir / np.abs(ir).sum() * 4, mode="full")[:len(x)]
  snr = rng.uniform(5, 30)
  noise, brown = background_noise(len(x), rng)
  x = with_noise(x, noise, snr)
  peak_db = rng.uniform(-30, -3)
  conditions = {"speed": round(float(speed), 4), "rt60_seconds": round(float(rt60), 3),
                "snr_db": round(float(snr), 2), "noise": "brown" if brown else "white",
                "peak_dbfs": round(float(peak_db), 2)}
  return at_peak(x, peak_db).astype(np.float32), conditions


def _utterance(voice: Voice, index: int, max_seconds: float, degraded: bool = False):
  """(audio, rate, the conditions it was degraded with or None)."""
  seed = int.from_bytes(hashlib.sha256(f"{voice.speaker}/{index}".encode()).digest()[:8], "big")
  rng = np.random.default_rng(seed)
  words = list(rng.choice(WORDS, size=int(rng.integers(5, 10))))
  rate = voice.rate + int(rng.integers(-25, 26))
  pitch = int(np.clip(voice.pitch + rng.integers(-6, 7), 0, 100))
  pitch_range = int(rng.integers(35, 75))
  while True:
    x, sr = synthesize(" ".join(words), voice.voice, rate=rate, pitch=pitch,
                       pitch_range=pitch_range)
    conditions = None
    if degraded:
      x, conditions = degrade(x, sr, rng)
    if len(x) <= max_seconds * sr or len(words) <= 2:
      return x[:int(max_seconds * sr)], sr, conditions
    words = words[:-1]


def _synthesise(corpus: DemoCorpus, folder: str) -> None:
  """Writes every recording, and beside the folder the conditions each
  degraded one was made in (`recording_conditions`)."""
  conditions = {}
  for voice in corpus.voices:
    os.makedirs(os.path.join(folder, voice.speaker), exist_ok=True)
    for i in range(corpus.utterances):
      name = f"{voice.speaker}/{voice.speaker}_{i:04d}.wav"
      path = os.path.join(folder, name)
      x, sr, conditions[name] = _utterance(voice, i, corpus.max_seconds, corpus.degrade)
      sf.write(path + ".part", x, sr, subtype="PCM_16", format="WAV")
      os.replace(path + ".part", path)
  if corpus.degrade:
    with open(folder + CONDITIONS, "w") as f:
      json.dump(conditions, f, indent=0)


CONDITIONS = ".conditions.json"


def recording_conditions(folder: str, recording: str) -> dict:
  """The conditions a recording of a degraded demo corpus was made in (speed,
  RT60, SNR, noise, peak level), as its synthesis recorded them beside the
  corpus `folder` (what `materialise` returns); `recording` as a dataset's
  `recording` feature names it ("speaker/speaker_0005.wav")."""
  try:
    with open(folder + CONDITIONS) as f:
      recorded = json.load(f)
  except FileNotFoundError:
    raise FileNotFoundError(f"no {folder + CONDITIONS}: a corpus that is not degraded, or "
                            f"one synthesised by an earlier a2i (delete {folder} and its "
                            ".complete marker to synthesise it again)") from None
  return recorded["/".join(recording.split("/")[-2:])]


def materialise(corpus: DemoCorpus, root: str) -> str:
  """Writes the corpus under `root` (once) and returns its folder.

  A marker beside the folder, written last, makes an interrupted synthesis
  start over rather than leave a half corpus that would build a smaller dataset.
  """
  import multiprocessing

  folder = os.path.join(root, f"{corpus.name}-{corpus.fingerprint()}")
  marker = folder + ".complete"
  if os.path.exists(marker):
    return folder
  worker = multiprocessing.get_context("spawn").Process(target=_synthesise, args=(corpus, folder))
  worker.start()
  worker.join()
  if worker.exitcode != 0:
    raise RuntimeError(f"synthesising the {corpus.name} corpus failed (exit {worker.exitcode})")
  with open(marker, "w") as f:
    json.dump(dataclasses.asdict(corpus), f, indent=1)
  return folder
