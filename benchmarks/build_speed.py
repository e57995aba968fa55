"""Build throughput (clips/s) of `python -m pipeline.build` for 1 and 2 Beam workers.

    python benchmarks/build_speed.py [--utterances 120] [--image_size 512] [--out docs/performance_build.json]

The same synthesised corpus (2 voices x --utterances, one clip each) is built
from scratch with the DirectRunner in multi_processing mode with 1 and then 2
worker processes, and in the default in_memory mode. Wall-clock time of the
whole command: corpus listing, the analysis pass, encoding and TFDS writing.

A second measurement runs the encode stage alone (EncodeCorpus, then a
shuffle of the encoded examples, without the TFDS writer) with 1 and 2 worker
processes, to separate our work from the runner's coordination of the writer.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

from pipeline import demo


def run(corpus, data_dir, image_size, extra):
  shutil.rmtree(data_dir, ignore_errors=True)
  t0 = time.perf_counter()
  subprocess.run([sys.executable, "-m", "pipeline.build", "--input", corpus, "--name", "bench",
                  "--image_size", str(image_size), "--data_dir", data_dir,
                  "--runner=DirectRunner", *extra], check=True, capture_output=True,
                 env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  seconds = time.perf_counter() - t0
  with open(os.path.join(data_dir, "a2i_speakers", "bench", "1.0.0", "build_report.json")) as f:
    clips = json.load(f)["summary"]["clips"]
  return seconds, clips


def encode_stage(corpus, image_size, workers):
  code = f"""
import time, apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from pipeline.corpus import list_corpus
from pipeline.spec import DEFAULT_SPEC
from pipeline.transforms import EncodeCorpus
_, files = list_corpus({corpus!r})
items = [(f, 'train') for f in files if f.status == 'audio']
t0 = time.perf_counter()
with beam.Pipeline(options=PipelineOptions(['--direct_num_workers={workers}',
                                            '--direct_running_mode=multi_processing'])) as p:
  out = p | beam.Create(items) | EncodeCorpus(DEFAULT_SPEC, {image_size}, 3600.0)
  _ = out['train'] | beam.Reshuffle() | beam.combiners.Count.Globally()
print(len(items), time.perf_counter() - t0)
"""
  out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                       env=dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1"))
  clips, seconds = out.stdout.split()[-2:]
  return {"seconds": round(float(seconds), 1), "clips": int(clips),
          "clips_per_second": round(int(clips) / float(seconds), 2)}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--utterances", type=int, default=120)
  parser.add_argument("--image_size", type=int, default=512)
  parser.add_argument("--out", default="docs/performance_build.json")
  args = parser.parse_args()
  work = tempfile.mkdtemp(prefix="a2i_bench_")
  corpus = demo.materialise(
      demo.DemoCorpus("bench", demo.DEMO.voices, args.utterances), work)
  data_dir = os.path.join(work, "tfds")
  rows = {}
  for label, extra in (("in_memory, 1 worker", []),
                       ("multi_processing, 1 worker",
                        ["--direct_num_workers=1", "--direct_running_mode=multi_processing"]),
                       ("multi_processing, 2 workers",
                        ["--direct_num_workers=2", "--direct_running_mode=multi_processing"])):
    seconds, clips = run(corpus, data_dir, args.image_size, extra)
    rows[label] = {"seconds": round(seconds, 1), "clips": clips,
                   "clips_per_second": round(clips / seconds, 2)}
    print(label, rows[label], flush=True)
  one = rows["multi_processing, 1 worker"]["clips_per_second"]
  two = rows["multi_processing, 2 workers"]["clips_per_second"]
  stage = {f"{w} worker{'s' * (w > 1)}": encode_stage(corpus, args.image_size, w) for w in (1, 2)}
  print("encode stage alone", stage, flush=True)
  result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                       f"Python {platform.python_version()}",
            "image_size": args.image_size, "runs": rows, "speedup_2_vs_1": round(two / one, 2),
            "encode_stage_alone": stage,
            "encode_stage_speedup_2_vs_1": round(stage["2 workers"]["clips_per_second"]
                                                 / stage["1 worker"]["clips_per_second"], 2)}
  print(json.dumps(result, indent=2))
  with open(args.out, "w") as f:
    json.dump(result, f, indent=2)
  shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
  main()
