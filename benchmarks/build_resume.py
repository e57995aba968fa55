"""A killed build, run again: how long the rerun takes, and is the result the same bytes?
And ArrayRecord against TFRecord: build time, and reading.

    python benchmarks/build_resume.py --files 4000 --out docs/performance_resume.json

On build_scale.py's corpus (4.0 s WAV files, one clip each, distinct audio):
  1. an uninterrupted `python -m pipeline.build` (TFRecord), timed;
  2. the same command in another data dir, SIGKILLed (with its workers)
     half-way through (1)'s wall time, then run again: the rerun's wall time
     against (1), and every file of the two versions compared byte for byte;
  3. the same build with --file_format array_record, timed; then reading:
     every example of the train split through `tfds.data_source` in a random
     order (random access, no TensorFlow), and the TFRecord build's train
     split through `tfds.as_dataset` in file order, examples/s.
"""

import argparse
import filecmp
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.build_scale import ROOT, make_corpus, subset  # noqa: E402
from benchmarks.measure import machine, run_measured  # noqa: E402


def command(corpus, data_dir, image_size, extra=()):
  return [sys.executable, "-m", "pipeline.build", "--input", corpus, "--name", "bench",
          "--image_size", str(image_size), "--data_dir", data_dir, "--runner=DirectRunner",
          *extra]


def timed(cmd) -> float:
  run = run_measured(cmd, cwd=ROOT)
  if run["returncode"]:
    raise SystemExit(f"{' '.join(cmd)} failed:\n{run['stderr'][-3000:]}")
  return run["seconds"], run["stdout"]


def kill_at(cmd, data_dir, seconds: float) -> int:
  """Starts the build and SIGKILLs its process group after `seconds`;
  returns how many shards were complete then."""
  proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), start_new_session=True)
  time.sleep(seconds)
  if proc.poll() is not None:
    raise SystemExit("the build ended before it was killed")
  os.killpg(proc.pid, signal.SIGKILL)
  proc.wait()
  pattern = os.path.join(data_dir, "a2i_speakers", "bench", "incomplete.*", "*-of-*")
  return len([n for n in glob.glob(pattern) if not n.endswith(".partial")])


def read_rates(tfrecord_dir, array_record_dir, limit: int) -> dict:
  """Examples/s: random access through tfds.data_source (ArrayRecord), and
  tfds.as_dataset in file order (TFRecord), decoded images included."""
  code = f"""
import json, time, numpy as np, tensorflow_datasets as tfds
source = tfds.data_source("a2i_speakers/bench", split="train", data_dir={array_record_dir!r})
order = np.random.default_rng(0).permutation(len(source))[:{limit}]
t0 = time.perf_counter()
for i in order:
  source[int(i)]["image"].sum()
random = len(order) / (time.perf_counter() - t0)
builder = tfds.builder("a2i_speakers/bench", data_dir={tfrecord_dir!r})
t0, n = time.perf_counter(), 0
for ex in tfds.as_numpy(builder.as_dataset(split="train").take({limit})):
  ex["image"].sum()
  n += 1
print(json.dumps({{"array_record_random_access_examples_per_s": round(random, 1),
                  "tfrecord_in_order_examples_per_s": round(n / (time.perf_counter() - t0), 1),
                  "examples_read": int(len(order))}}))
"""
  out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  if out.returncode:
    raise SystemExit(out.stderr[-3000:])
  return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--files", type=int, default=4000)
  p.add_argument("--image_size", type=int, default=512)
  p.add_argument("--corpus", default=os.path.join(tempfile.gettempdir(), "a2i_scale_corpus"))
  p.add_argument("--read", type=int, default=1000, help="examples read per format")
  p.add_argument("--out", default="docs/performance_resume.json")
  args = p.parse_args(argv)
  full = make_corpus(args.corpus + "_full", args.files)
  corpus = subset(full, f"{args.corpus}_{args.files}", args.files)
  work = tempfile.mkdtemp(prefix="a2i_resume_")
  clean, killed, array = (os.path.join(work, n) for n in ("clean", "killed", "array_record"))
  result = {"command": "python benchmarks/build_resume.py " + " ".join(
                sys.argv[1:] if argv is None else argv),
            "machine": machine(), "files": args.files, "image_size": args.image_size}
  result["uninterrupted_seconds"] = round(timed(command(corpus, clean, args.image_size))[0], 1)
  planned = len(glob.glob(os.path.join(clean, "a2i_speakers", "bench", "*.*.*", "*-of-*")))
  done = kill_at(command(corpus, killed, args.image_size), killed,
                 result["uninterrupted_seconds"] / 2)
  seconds, stdout = timed(command(corpus, killed, args.image_size))
  resumed = next((line for line in stdout.splitlines() if line.startswith("resumed:")), None)
  versions = [glob.glob(os.path.join(d, "a2i_speakers", "bench", "*.*.*"))[0]
              for d in (clean, killed)]
  names = sorted(os.listdir(versions[0]))
  same = names == sorted(os.listdir(versions[1])) and all(
      filecmp.cmp(os.path.join(versions[0], n), os.path.join(versions[1], n), shallow=False)
      for n in names)
  result.update({"killed_with_shards_complete": done, "shards_planned": planned,
                 "rerun_seconds": round(seconds, 1), "rerun_says": resumed,
                 "rerun_over_uninterrupted": round(seconds / result["uninterrupted_seconds"], 3),
                 "identical_bytes": same, "files_compared": len(names)})
  result["array_record_build_seconds"] = round(timed(command(
      corpus, array, args.image_size, ["--file_format", "array_record"]))[0], 1)
  result["reading"] = read_rates(clean, array, args.read)
  print(json.dumps(result, indent=1), flush=True)
  with open(args.out, "w") as f:
    json.dump(result, f, indent=1)
  shutil.rmtree(work, ignore_errors=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
