"""How long does each command take to start? Import time and `--help` time.

    python benchmarks/import_time.py --out docs/performance_import.json

For every command a user types, the median over --repeats fresh processes
of (a) `import <module>` and (b) `python -m <module> --help`, and what the
import changed in the process (environment variables, import hooks, root
logger handlers and filters): a library import should change nothing.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks.measure
from benchmarks.measure import machine  # noqa: E402

COMMANDS = ("pipeline.build", "pipeline.encode", "pipeline.view", "trainer.fit",
            "trainer.predict", "trainer.ablate", "trainer.scaling", "trainer.verify",
            "trainer.reconstruction", "trainer.filters")

# Imports `module` and prints what changed in the process, as JSON.
_PROBE = """
import json, logging, os, sys, time
env, hooks = dict(os.environ), list(sys.meta_path)
root = logging.getLogger()
handlers, filters = list(root.handlers), list(root.filters)
t0 = time.perf_counter()
import {module}
seconds = time.perf_counter() - t0
print(json.dumps({{
    "seconds": seconds,
    "environment": sorted(k for k in set(os.environ) | set(env) if os.environ.get(k) != env.get(k)),
    "import_hooks": [type(h).__name__ for h in sys.meta_path if h not in hooks],
    "root_logger": [type(h).__name__ for h in root.handlers + root.filters
                    if h not in handlers + filters],
    "tensorflow_imported": "tensorflow" in sys.modules}}))
"""


def _run(args: list[str]) -> tuple[float, str]:
  t0 = time.perf_counter()
  out = subprocess.run(args, capture_output=True, text=True, cwd=os.getcwd(),
                       env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
  if out.returncode != 0:
    raise SystemExit(f"{' '.join(args)} failed: {out.stderr[-500:]}")
  return time.perf_counter() - t0, out.stdout


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--out", default="docs/performance_import.json")
  args = parser.parse_args()
  rows = {}
  for module in COMMANDS:
    imports, helps, changed = [], [], None
    for _ in range(args.repeats):
      _, out = _run([sys.executable, "-c", _PROBE.format(module=module)])
      probe = json.loads(out.strip().splitlines()[-1])
      imports.append(probe.pop("seconds"))
      changed = probe
      helps.append(_run([sys.executable, "-m", module, "--help"])[0])
    rows[module] = {"import_seconds": round(statistics.median(imports), 3),
                    "help_seconds": round(statistics.median(helps), 3), "import_changes": changed}
    print(f"{module:24} import {rows[module]['import_seconds']:6.2f} s   --help "
          f"{rows[module]['help_seconds']:6.2f} s   changes {changed}", flush=True)
  with open(args.out, "w") as f:
    json.dump({"machine": machine(), "command": "python benchmarks/import_time.py "
               + " ".join(sys.argv[1:]), "repeats": args.repeats, "commands": rows}, f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
