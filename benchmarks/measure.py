"""Running a command while measuring it: wall time and peak RSS of its whole
process tree (worker processes included), polled every 0.1 s."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil


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
