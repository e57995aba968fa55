"""What several test modules use: signals, WAV files, tiny corpora, builds and
command-line runs (in a subprocess, or in process for the trainer's commands)."""

import contextlib
import dataclasses
import hashlib
import importlib
import io
import os
import subprocess
import sys

import numpy as np
import soundfile as sf
from apache_beam.io.filesystem import FileMetadata, MatchResult
from apache_beam.io.localfilesystem import LocalFileSystem

SR = 16000
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
VOICES = {"ana": ("en+f3", 70), "ben": ("en+m3", 30), "cyd": ("en-us+m1", 45)}


def tone(freq, seconds, amp=0.5, sr=SR, phase=0.0):
  t = np.arange(int(seconds * sr)) / sr
  return (amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def write_wav(path, x, sr=SR, subtype="PCM_16"):
  path.parent.mkdir(parents=True, exist_ok=True)
  sf.write(str(path), x, sr, subtype=subtype)
  return path


def write_compressed(path, x, sr, codec="aac", container="mp4", channels=1):
  """Encodes x (float32 mono at sr) with FFmpeg's own encoders through PyAV,
  as VoxCeleb2's .m4a (AAC in MP4) or a .webm (Opus) are made."""
  import av

  path.parent.mkdir(parents=True, exist_ok=True)
  layout = "mono" if channels == 1 else "stereo"
  with av.open(str(path), "w", format=container) as out:
    stream = out.add_stream(codec, rate=sr, layout=layout)
    size = stream.codec_context.frame_size or 1024
    planar = np.repeat(np.asarray(x, np.float32)[None], channels, axis=0)
    for start in range(0, planar.shape[1], size):
      frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(planar[:, start:start + size]),
                                         format="fltp", layout=layout)
      frame.sample_rate = sr
      frame.pts = start
      for packet in stream.encode(frame):
        out.mux(packet)
    for packet in stream.encode(None):
      out.mux(packet)
  return path


def make_corpus(root, utterances=5):
  """Three eSpeak NG voices (one take at 8 kHz), a long recording, and the
  usual broken files."""
  from pipeline.espeak import synthesize

  for speaker, (voice, pitch) in VOICES.items():
    for i in range(utterances):
      x, sr = synthesize(f"Sentence {i} of the tests, read by {speaker} at an even pace.",
                         voice, rate=150 + 7 * i, pitch=pitch)
      if speaker == "cyd" and i == utterances - 1:   # one telephone-band take
        from pipeline.audio import resample
        x, sr = resample(x, sr, 8000), 8000
      write_wav(root / speaker / f"{speaker}_{i}.wav", x, sr)
  long = np.concatenate([synthesize("A much longer recording that keeps going on and on, "
                                    "sentence after sentence, for the segmenter.", "en+f3",
                                    rate=120, pitch=70)[0]] * 2)
  write_wav(root / "ana" / "long take.wav", long, 22050)
  (root / "ben" / "empty.wav").write_bytes(b"")
  (root / "ben" / "noise.wav").write_bytes(np.random.default_rng(0).bytes(3000))
  whole = (root / "cyd" / "cyd_0.wav").read_bytes()
  (root / "cyd" / "cut.wav").write_bytes(whole[:40])                 # header cut short
  (root / "cyd" / "half.wav").write_bytes(whole[:len(whole) // 2])   # data cut short
  write_wav(root / "cyd" / "silence.wav", np.zeros(32000, np.float32))
  write_wav(root / "cyd" / "blip.wav",
            (0.5 * np.sin(np.arange(320) * 2 * np.pi * 440 / 16000)).astype(np.float32))
  (root / "NOTES.md").write_text("recorded in a quiet room\n")
  return root


def build(args, data_dir, check=True):
  """`python -m pipeline.build` in a subprocess, as a user runs it."""
  out = subprocess.run([sys.executable, "-m", "pipeline.build", "--data_dir", str(data_dir),
                        "--runner=DirectRunner", *args], capture_output=True, text=True, env=ENV)
  if check:
    assert out.returncode == 0, out.stderr[-3000:]
  return out


def run(module, *args, check=True, env=ENV):
  """`python -m module` in a subprocess (builds, and runs that are killed)."""
  out = subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True,
                       text=True, env=env)
  if check:
    assert out.returncode == 0, out.stderr[-3000:]
  return out


def python_without_tensorflow(code, folder, check=True, env=None):
  """`python -c code` in a new process that cannot import TensorFlow, as on
  a machine where it is not installed: the interpreter starts without its
  site-packages (-S) and sees a copy of them, made of links, without
  TensorFlow; the repository is on its path. (A blocked import would not
  do: TFDS and etils ask whether TensorFlow is installed before importing.)"""
  import sysconfig

  shadow = folder / "site-packages-without-tensorflow"
  if not shadow.exists():
    shadow.mkdir(parents=True)
    site = sysconfig.get_paths()["purelib"]
    for name in os.listdir(site):
      if not (name == "tensorflow" or name.startswith(("tensorflow-", "tensorflow_io"))):
        os.symlink(os.path.join(site, name), shadow / name)
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  prelude = (f"import sys; sys.path[:0] = [{str(shadow)!r}, {root!r}]; "
             "sys.path = [p for p in sys.path if not p.endswith('site-packages')]\n")
  out = subprocess.run([sys.executable, "-S", "-c", prelude + code], capture_output=True,
                       text=True, env=env or ENV, cwd="/")
  if check:
    assert out.returncode == 0, out.stderr[-3000:]
  return out


def command_without_tensorflow(module, *args, folder, env=None, check=True):
  """`python -m module args` where TensorFlow is not installed
  (python_without_tensorflow): a command as a JAX or PyTorch machine runs it."""
  code = (f"import runpy; sys.argv = [{module!r}, *{[str(a) for a in args]!r}]\n"
          f"runpy.run_module({module!r}, run_name='__main__')")
  return python_without_tensorflow(code, folder, check=check, env=env)


def fresh_python(code, env=None, check=True):
  """`python -c code` in a new process, outside the repository: what a user's
  own script sees, without our packages on its path."""
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=env or ENV, cwd="/")
  if check:
    assert out.returncode == 0, out.stderr[-2000:]
  return out


def example_digests(data_dir, name="a2i_speakers/voices_64"):
  """(split, position in split) -> hash of every feature, in the order tfds reads them."""
  import tensorflow_datasets as tfds

  builder = tfds.builder(name, data_dir=str(data_dir))
  out = {}
  for split in builder.info.splits:
    for i, ex in enumerate(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False))):
      h = hashlib.sha256()
      for key in sorted(ex):
        h.update(key.encode() + np.asarray(ex[key]).tobytes())
      out[(split, i)] = h.hexdigest()
  return out


@dataclasses.dataclass
class Outcome:
  returncode: int
  stdout: str
  stderr: str


def cli(module, *args, check=True):
  """`python -m module args` run in this process (its `main(argv)`), with
  its exit status and its output: the trainer's commands without paying a
  TensorFlow start-up per call. Any exception other than the parser's exit
  fails the test, as a traceback would."""
  main = importlib.import_module(module).main
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
      code = main([str(a) for a in args]) or 0
    except SystemExit as e:
      code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
  result = Outcome(code, out.getvalue(), err.getvalue())
  if check:
    assert code == 0, result.stderr[-3000:]
  return result


class BucketLikeFileSystem(LocalFileSystem):
  """`a2ibucket:///abs/path`: a filesystem the OS cannot open, as gs:// or
  s3:// are, that Beam resolves by its scheme (backed here by a local folder)."""

  PREFIX = "a2ibucket://"

  @classmethod
  def scheme(cls):
    return "a2ibucket"

  def _local(self, path):  # Beam's own match() calls back with local paths
    return path[len(self.PREFIX):] if path.startswith(self.PREFIX) else path

  def match(self, patterns, limits=None):
    return [MatchResult(r.pattern, [FileMetadata(self.PREFIX + m.path, m.size_in_bytes)
                                    for m in r.metadata_list])
            for r in super().match([self._local(p) for p in patterns], limits)]

  def open(self, path, *args, **kwargs):
    return super().open(self._local(path), *args, **kwargs)

  def create(self, path, *args, **kwargs):
    return super().create(self._local(path), *args, **kwargs)

  def exists(self, path):
    return super().exists(self._local(path))

  def rename(self, sources, destinations):
    return super().rename([self._local(p) for p in sources],
                          [self._local(p) for p in destinations])

  def delete(self, paths):
    return super().delete([self._local(p) for p in paths])
