"""Build at corpus scale: wall time, clips/s and peak RSS of the whole process tree.

    python benchmarks/build_scale.py                     # everything below, ~25 min on 2 cores
    python benchmarks/build_scale.py --sizes 1000 --skip_workers --skip_one_core
    python benchmarks/build_scale.py --before ../a2i-old  # also time another checkout
    python benchmarks/build_scale.py --extrapolate_only   # redo the extrapolation of --out

Corpus: 4.0 s WAV files at 16 kHz (one clip each), 20 eSpeak NG voices,
degraded as in the voices20 demo; file k is pool utterance k mod 400 with
its own seeded noise and level, so every file is distinct audio. The 1k and
4k corpora are hard-linked subsets of the 16k one.

Measured, each as a fresh `python -m pipeline.build` command:
  * sizes:    the default command (`--runner=DirectRunner`, which uses one
              worker process per core) at --image_size, for each corpus size;
  * workers:  --direct_num_workers=1 vs 2 (multi_processing) at --workers_files
              files and --workers_image_size px;
  * one core: --direct_num_workers=1 (in-memory) at --one_core_files files;
  * encode stage alone: decode -> cut -> encode -> PNG -> serialise, a plain
              loop in one process, one thread, on the first --stage_files
              files; and the analysis pass alone (decode -> cut) on the same.
Peak RSS sums the build process and all its descendants, polled every 0.1 s.
Writes --out (JSON) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import soundfile as sf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # as a script
from benchmarks.measure import machine, run_measured  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SR, SECONDS, POOL = 16000, 4.0, 400


def make_corpus(folder: str, files: int, seconds: float = SECONDS) -> str:
  """The largest corpus, written once; smaller ones are hard-linked subsets."""
  from pipeline import demo

  marker = os.path.join(folder, f".complete-{files}")
  if os.path.exists(marker):
    return folder
  voices = demo.VOICES20.voices
  pool = []
  for i in range(POOL):
    voice = voices[i % len(voices)]
    x, rate, _ = demo._utterance(voice, i // len(voices), SECONDS, degraded=False)
    from pipeline.audio import to_working_rate

    pool.append((voice.speaker, to_working_rate(x, rate)))
  for k in range(files):
    speaker, x = pool[k % POOL]
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(str(k).encode()).digest()[:8],
                                               "big"))
    y = np.zeros(int(seconds * SR), np.float32)
    y[:len(x)] = x[:len(y)]
    y += rng.standard_normal(len(y)).astype(np.float32) * 10 ** (rng.uniform(-60, -45) / 20)
    y *= 10 ** (rng.uniform(-12, 0) / 20) / max(1e-6, float(np.abs(y).max()))
    path = os.path.join(folder, speaker, f"{speaker}_{k:05d}.wav")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sf.write(path, y, SR, subtype="PCM_16")
  open(marker, "w").close()
  return folder


def subset(full: str, folder: str, files: int) -> str:
  if os.path.isdir(folder):
    return folder
  for dirpath, _, names in os.walk(full):
    for name in names:
      if name.endswith(".wav") and int(name[-9:-4]) < files:
        rel = os.path.relpath(os.path.join(dirpath, name), full)
        os.makedirs(os.path.join(folder, os.path.dirname(rel)), exist_ok=True)
        os.link(os.path.join(full, rel), os.path.join(folder, rel))
  return folder


def build(corpus: str, data_dir: str, image_size: int, extra: list[str], repo: str = ROOT):
  shutil.rmtree(data_dir, ignore_errors=True)
  cmd = [sys.executable, "-m", "pipeline.build", "--input", corpus, "--name", "bench",
         "--image_size", str(image_size), "--data_dir", data_dir, "--runner=DirectRunner",
         *extra]
  run = run_measured(cmd, cwd=repo, env={"PYTHONPATH": repo})
  seconds, peak = run["seconds"], run["peak_rss"]
  launcher, worker = run["peak_rss_launcher"], run["peak_rss_largest_child"]
  if run["returncode"]:
    raise SystemExit(f"{' '.join(cmd)} failed:\n{run['stderr'][-3000:]}")
  (version,) = glob.glob(os.path.join(data_dir, "a2i_speakers", "bench", "*.*.*"))
  with open(os.path.join(version, "build_report.json")) as f:
    clips = json.load(f)["summary"]["clips"]
  with open(os.path.join(version, "dataset_info.json")) as f:
    num_bytes = sum(int(s.get("numBytes", 0)) for s in json.load(f)["splits"])
  shutil.rmtree(data_dir, ignore_errors=True)
  row = {"command": " ".join(["python -m pipeline.build", "--image_size", str(image_size),
                              "--runner=DirectRunner", *extra]),
         "seconds": round(seconds, 1), "clips": clips,
         "bytes_per_example": round(num_bytes / clips),
         "clips_per_second": round(clips / seconds, 2), "peak_rss_mb": round(peak / 2**20),
         "peak_rss_launcher_mb": round(launcher / 2**20),
         "peak_rss_largest_worker_mb": round(worker / 2**20)}
  print(row, flush=True)
  return row


def memory_only(args) -> None:
  """Peak RSS against the corpus size: the default command at each of
  --sizes (files of --seconds), and --before's checkout at --before_sizes;
  the ratios of the largest size's peaks to the smallest's."""
  largest = max(args.sizes + (args.before_sizes if args.before else []))
  tag = f"{args.seconds:g}s"
  full = make_corpus(os.path.join(args.work, f"corpus_{largest}_{tag}"), largest, args.seconds)
  sizes = sorted(set(args.sizes + (args.before_sizes if args.before else [])))
  corpus = {n: subset(full, os.path.join(args.work, f"corpus_{n}_{tag}"), n) for n in sizes}
  data_dir = os.path.join(args.work, "tfds")
  runs = {}
  for n in args.sizes:
    runs[f"default, {n} files"] = dict(build(corpus[n], data_dir, args.image_size, []),
                                       image_size=args.image_size, files=n)
  for n in (args.before_sizes if args.before else []):
    runs[f"before, default, {n} files"] = dict(build(
        corpus[n], data_dir, args.image_size, [], repo=os.path.abspath(args.before)),
        image_size=args.image_size, files=n)
  small, large = min(args.sizes), max(args.sizes)
  a, b = runs[f"default, {small} files"], runs[f"default, {large} files"]
  result = {"machine": machine(), "file_seconds": args.seconds,
            "command": "python benchmarks/build_scale.py " + " ".join(sys.argv[1:]),
            "runs": runs,
            "derived": {f"launcher_rss_{large}_over_{small}": round(
                            b["peak_rss_launcher_mb"] / a["peak_rss_launcher_mb"], 3),
                        f"tree_rss_{large}_over_{small}": round(
                            b["peak_rss_mb"] / a["peak_rss_mb"], 3)}}
  print(json.dumps(result["derived"]))
  with open(args.out, "w") as f:
    json.dump(result, f, indent=1)


def stage_alone(corpus: str, image_size: int, files: int) -> dict:
  """CPU seconds per clip of the core chain in one thread, and of the analysis pass."""
  code = f"""
import json, os, time
from pipeline.bulk import prepare_process
prepare_process()   # as the build's workers run
import tensorflow_datasets as tfds
import tfds_a2i
from tfds_a2i.a2i_speakers.a2i_speakers_dataset_builder import ExampleSerializer
from pipeline.clips import clips_of
from pipeline.corpus import list_corpus
from pipeline.transforms import clip_example
_, files = list_corpus({corpus!r})
files = [f for f in files if f.status == 'audio'][:{files}]
speakers = sorted({{f.speaker for f in files}})
config = tfds_a2i.A2iSpeakersConfig(name='bench', image_size={image_size}, speakers=tuple(speakers))
serialize = ExampleSerializer(tfds_a2i.Builder(config=config, data_dir='/tmp/unused').info.features)
for f in files[:5]:  # warm-up: first calls load libraries and fill caches
  for clip in clips_of(f.path):
    serialize(clip_example(f, clip, config.encoding, {image_size}))
t0 = time.process_time(); n = 0
for f in files:
  for clip in clips_of(f.path):
    serialize(clip_example(f, clip, config.encoding, {image_size})); n += 1
encode = time.process_time() - t0
t0 = time.process_time()
for f in files:
  clips_of(f.path)
analysis = time.process_time() - t0
print(json.dumps([n, encode, analysis]))
"""
  # One thread, pinned through the environment as pipeline.build does for
  # its workers: otherwise idle BLAS/OpenMP threads spin and add CPU time.
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", OMP_NUM_THREADS="1",
             OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
  out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True,
                       text=True, env=env)
  n, encode, analysis = json.loads(out.stdout.strip().splitlines()[-1])
  row = {"files": files, "clips": n, "image_size": image_size,
         "encode_cpu_seconds": round(encode, 1), "clips_per_second": round(n / encode, 2),
         "analysis_cpu_seconds": round(analysis, 1),
         "analysis_share_of_build_work": round(analysis / (analysis + encode), 3)}
  print("stage alone", row, flush=True)
  return row


# Public sizes of the corpora extrapolated to (their papers / download pages).
# Clips per utterance: ceil(mean duration / 4.096 s), the tail kept as this
# corpus keeps it; VoxCeleb2 is AAC (.m4a), which must first be converted to
# FLAC or WAV (libsndfile does not decode AAC).
TARGETS = {
    "LibriSpeech-960": {"utterances": 281_241, "mean_seconds": 12.3},
    "VoxCeleb2-dev": {"utterances": 1_092_009, "mean_seconds": 7.8},
}


def extrapolate(result: dict) -> dict:
  """Wall time and size of the default build of large corpora, from the
  measured one-core throughput, the measured 2-worker scaling efficiency,
  and the measured per-file bookkeeping memory of the local runner."""
  import math

  runs, out = result["runs"], {}
  core = next(r for k, r in runs.items() if k.startswith("one core"))
  per_core = core["clips_per_second"]  # whole build, 512 px, one process
  one = next((r for k, r in runs.items() if k.startswith("1 worker")), None)
  two = next((r for k, r in runs.items() if k.startswith("2 workers")), None)
  efficiency = (two["clips_per_second"] / one["clips_per_second"] / 2) if one and two else 0.9
  sizes = sorted((r["clips"], r) for k, r in runs.items() if k.startswith("default"))
  (n0, r0), (n1, r1) = sizes[0], sizes[-1]
  kb_per_file = (r1["peak_rss_mb"] - r0["peak_rss_mb"]) * 1024 / (n1 - n0)
  example_kb = result["bytes_per_example_512px"] / 1024
  for name, c in TARGETS.items():
    clips = c["utterances"] * math.ceil(c["mean_seconds"] / 4.096)
    row = {"clips_assumed": clips, "dataset_gb_at_512px": round(clips * example_kb / 2**20)}
    for label, cores in (("64-core machine, DirectRunner", 64),
                         ("Dataflow, 50 x n2-standard-8 (400 vCPU)", 400)):
      seconds = clips / (per_core * cores * efficiency)
      row[label] = {"minutes_encoding": round(seconds / 60, 1),
                    "write_mb_per_second": round(clips * example_kb / 1024 / seconds)}
    row["64-core machine, DirectRunner"]["bookkeeping_gb"] = round(
        c["utterances"] * kb_per_file / 2**20, 1)
    out[name] = row
  return {"assumptions": {"clips_per_second_per_core_512px": per_core,
                          "parallel_efficiency": round(efficiency, 2),
                          "bookkeeping_kb_per_file": round(kb_per_file, 1),
                          "corpora": TARGETS,
                          "note": "per-core speed of this machine's Xeon assumed for the "
                                  "64-core box and for Dataflow vCPUs; Dataflow start-up "
                                  "(3-5 min) not included"},
          "corpora": out}


def table(result: dict) -> str:
  lines = ["| run | files | px | wall s | clips/s | peak RSS, tree | launcher | largest worker |",
           "|---|---|---|---|---|---|---|---|"]
  for key, row in result["runs"].items():
    lines.append(f"| {key} | {row['clips']} | {row['image_size']} | {row['seconds']} | "
                 f"{row['clips_per_second']} | {row['peak_rss_mb']} MB | "
                 f"{row['peak_rss_launcher_mb']} MB | {row['peak_rss_largest_worker_mb']} MB |")
  for key, row in result["encode_stage_alone"].items():
    lines.append(f"| encode stage alone, one thread ({key}) | {row['clips']} | "
                 f"{row['image_size']} | {row['encode_cpu_seconds']} (CPU) | "
                 f"{row['clips_per_second']} | | | |")
  return "\n".join(lines)


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  p.add_argument("--sizes", type=int, nargs="*", default=[1000, 4000, 16000])
  p.add_argument("--image_size", type=int, default=512)
  p.add_argument("--workers_files", type=int, default=4000)
  p.add_argument("--workers_image_size", type=int, default=128)
  p.add_argument("--one_core_files", type=int, default=4000)
  p.add_argument("--stage_files", type=int, default=1000)
  p.add_argument("--skip_workers", action="store_true")
  p.add_argument("--skip_one_core", action="store_true")
  p.add_argument("--before", help="another checkout of a2i to time at the same sizes")
  p.add_argument("--before_sizes", type=int, nargs="+", default=[1000, 4000])
  p.add_argument("--work", default="/tmp/a2i_build_scale")
  p.add_argument("--out", default="docs/performance_scale.json")
  p.add_argument("--seconds", type=float, default=SECONDS, help="length of each file")
  p.add_argument("--memory_only", action="store_true",
                 help="only the default command at --sizes (and --before at --before_sizes): "
                      "peak RSS of the launcher and of the whole tree against the file count")
  p.add_argument("--extrapolate_only", action="store_true",
                 help="recompute the extrapolation of an existing --out file")
  args = p.parse_args()
  if args.extrapolate_only:
    with open(args.out) as f:
      result = json.load(f)
    if "bytes_per_example_512px" not in result:
      folder = os.path.join(args.work, "corpus_1000")
      row = build(folder if os.path.isdir(folder) else make_corpus(folder, 1000), os.path.join(args.work, "tfds"), 512, [])
      result["bytes_per_example_512px"] = row["bytes_per_example"]
    result["extrapolation"] = extrapolate(result)
    print(json.dumps(result["extrapolation"], indent=1))
    with open(args.out, "w") as f:
      json.dump(result, f, indent=1)
    return

  if args.memory_only:
    return memory_only(args)
  largest = max(args.sizes + [args.workers_files, args.one_core_files, args.stage_files])
  full = make_corpus(os.path.join(args.work, f"corpus_{largest}"), largest)
  corpus = {n: subset(full, os.path.join(args.work, f"corpus_{n}"), n) for n in
            set(args.sizes + args.before_sizes + [args.workers_files, args.one_core_files])}
  data_dir = os.path.join(args.work, "tfds")
  runs = {}
  for n in args.sizes:
    runs[f"default, {n} files"] = dict(build(corpus[n], data_dir, args.image_size, []),
                                       image_size=args.image_size)
  if not args.skip_workers:
    for w in (1, 2):
      runs[f"{w} worker{'s' * (w > 1)}, {args.workers_files} files"] = dict(build(
          corpus[args.workers_files], data_dir, args.workers_image_size,
          [f"--direct_num_workers={w}", "--direct_running_mode=multi_processing"]),
          image_size=args.workers_image_size)
  if not args.skip_one_core:
    runs[f"one core (in_memory), {args.one_core_files} files"] = dict(build(
        corpus[args.one_core_files], data_dir, args.image_size, ["--direct_num_workers=1"]),
        image_size=args.image_size)
  if args.before:
    for n in args.before_sizes:
      runs[f"before, default, {n} files"] = dict(build(
          corpus[n], data_dir, args.image_size, [], repo=os.path.abspath(args.before)),
          image_size=args.image_size)
  stage = {f"{s} px": stage_alone(full, s, args.stage_files)
           for s in sorted({args.image_size, args.workers_image_size})}
  result = {"machine": machine(),
            "command": "python benchmarks/build_scale.py " + " ".join(sys.argv[1:]),
            "runs": runs, "encode_stage_alone": stage}
  derived = {}
  d = {n: runs.get(f"default, {n} files") for n in args.sizes}
  if d.get(1000) and d.get(4000):
    derived["rss_4k_over_1k"] = round(d[4000]["peak_rss_mb"] / d[1000]["peak_rss_mb"], 2)
    derived["time_4k_over_1k"] = round(d[4000]["seconds"] / d[1000]["seconds"], 2)
  one = runs.get(f"1 worker, {args.workers_files} files")
  two = runs.get(f"2 workers, {args.workers_files} files")
  if one and two:
    derived["speedup_2_vs_1_workers"] = round(two["clips_per_second"]
                                              / one["clips_per_second"], 2)
  core = runs.get(f"one core (in_memory), {args.one_core_files} files")
  if core:
    derived["one_core_build_over_stage_alone"] = round(
        core["clips_per_second"] / stage[f"{args.image_size} px"]["clips_per_second"], 2)
  result["derived"] = derived
  sized = [r for r in runs.values() if r["image_size"] == 512 and "bytes_per_example" in r]
  if sized:
    result["bytes_per_example_512px"] = sized[0]["bytes_per_example"]
  if core and len(args.sizes) > 1 and sized:
    result["extrapolation"] = extrapolate(result)
  print(json.dumps(derived, indent=1))
  print(table(result))
  with open(args.out, "w") as f:
    json.dump(result, f, indent=1)


if __name__ == "__main__":
  main()
