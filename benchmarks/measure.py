"""Running a command while measuring it: wall time and peak RSS of its whole
process tree (worker processes included), polled every 0.1 s; and the
machine a measurement was taken on; a study's JSON written."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time

import psutil


# CPU features that change which kernels TensorFlow and NumPy run: with
# AVX-512 VNNI or AMX, TensorFlow's oneDNN custom operations are on, and a
# training's floating-point sums (so its last test clip or two) differ from
# another CPU's.
_CPU_FEATURES = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_vnni": "AVX-512 VNNI",
                 "amx_tile": "AMX"}


def machine() -> str:
  """What a result was measured on: architecture, cores, memory, CPU model
  and the features above, Python."""
  model, flags = platform.processor() or platform.machine(), set()
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        key, _, value = line.partition(":")
        if key.strip() == "model name":
          model = value.strip()
        elif key.strip() == "flags":
          flags = set(value.split())
          break
  except OSError:
    pass
  features = [name for flag, name in _CPU_FEATURES.items() if flag in flags]
  return (f"{platform.machine()}, {os.cpu_count()} cores, "
          f"{round(psutil.virtual_memory().total / 2**30)} GiB, {model}"
          + (f" ({', '.join(features)})" if features else "")
          + f", Python {platform.python_version()}")


def tree_rss(proc: psutil.Process) -> tuple[int, int, int]:
  """(whole tree, the process itself, its largest descendant) in bytes."""
  sizes = []
  for p in [proc] + proc.children(recursive=True):
    try:
      sizes.append(p.memory_info().rss)
    except psutil.Error:
      sizes.append(0)
  return sum(sizes), sizes[0], max(sizes[1:], default=0)


def run_measured(cmd: list[str], cwd: str | None = None, env: dict | None = None,
                 echo: bool = False) -> dict:
  """Runs `cmd`; returns seconds, peak RSS (tree, launcher, largest
  descendant; bytes), its exit status and output. With `echo`, stdout is
  passed through as it comes."""
  t0 = time.perf_counter()
  proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {})),
                          text=True)
  ps, peak, own, largest = psutil.Process(proc.pid), 0, 0, 0
  lines = []
  os.set_blocking(proc.stdout.fileno(), False)
  while proc.poll() is None:
    total, mine, biggest = tree_rss(ps)
    peak, own, largest = max(peak, total), max(own, mine), max(largest, biggest)
    for line in iter(proc.stdout.readline, ""):
      lines.append(line)
      if echo:
        sys.stdout.write(line)
    time.sleep(0.1)
  seconds = time.perf_counter() - t0
  rest, err = proc.communicate()
  lines.append(rest or "")
  return {"seconds": seconds, "peak_rss": peak, "peak_rss_launcher": own,
          "peak_rss_largest_child": largest, "returncode": proc.returncode,
          "stdout": "".join(lines), "stderr": err}


def write_json(path: str, result) -> None:
  """Writes a study's result (indented JSON), making its folder."""
  import json

  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  with open(path, "w") as f:
    json.dump(result, f, indent=1)
