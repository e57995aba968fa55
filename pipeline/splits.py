"""Train/validation/test assignment: grouped, stratified, deterministic.

A split is decided per *group* (the recording session the layout names: a
file, a LibriSpeech chapter, a VoxCeleb video), so no session has clips on
both sides. Within each speaker, groups are ordered by a hash of their name,
not by random draws, and the first 80 % go to train, the next 10 % to
validation, the rest to test: the same corpus always splits the same way, on
any machine and with any number of workers, and each speaker is represented
in every split in proportion. `by="speaker"` splits speakers instead
(verification: test speakers are never seen in training).
"""

from __future__ import annotations

import collections
import csv
import hashlib
import math

SPLITS = ("train", "validation", "test")
# VoxCeleb1's iden_split.txt numbers its splits; CSV files may name them.
_NUMBERED = {"1": "train", "2": "validation", "3": "test"}
_NAMED = {"train": "train", "validation": "validation", "val": "validation", "dev": "validation",
          "test": "test"}


def parse_fractions(text: str) -> tuple[float, float, float]:
  """'80/10/10' -> (0.8, 0.1, 0.1)."""
  parts = text.split("/")
  try:
    values = [float(p) for p in parts]
  except ValueError:
    values = []
  if (len(values) != 3 or not all(math.isfinite(v) for v in values) or min(values) < 0
      or values[0] <= 0):
    raise ValueError(f"splits must look like 80/10/10, got {text!r}")
  if abs(sum(values) - 100) > 1e-6:
    raise ValueError(f"splits are percentages summing to 100, got {text!r} "
                     f"(sum {sum(values):g})")
  return tuple(v / 100 for v in values)


def _rank(name: str) -> str:
  return hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()


def allocate(n: int, fractions) -> list[int]:
  """Counts per split summing to n: largest remainder, and at least one
  validation and one test item once there are three or more."""
  exact = [n * f for f in fractions]
  counts = [math.floor(e) for e in exact]
  order = sorted(range(3), key=lambda i: (counts[i] - exact[i], i))
  for i in order[:n - sum(counts)]:
    counts[i] += 1
  if n >= 3:
    for i in (1, 2):
      if fractions[i] > 0 and counts[i] == 0:
        counts[i], counts[0] = 1, counts[0] - 1
  elif n == 2 and fractions[2] > 0 and counts[2] == 0:
    counts = [1, 0, 1]
  return counts


def _deal(names, fractions) -> dict[str, str]:
  ordered = sorted(names, key=_rank)
  counts = allocate(len(ordered), fractions)
  out, start = {}, 0
  for split, count in zip(SPLITS, counts):
    for name in ordered[start:start + count]:
      out[name] = split
    start += count
  return out


def assign(pairs, fractions=(0.8, 0.1, 0.1), by: str = "recording") -> dict[tuple[str, str], str]:
  """Maps each (speaker, group) pair to a split name."""
  pairs = sorted(set(pairs))
  if by == "speaker":
    by_speaker = _deal({s for s, _ in pairs}, fractions)
    return {(s, g): by_speaker[s] for s, g in pairs}
  if by != "recording":
    raise ValueError(f"split_by must be 'recording' or 'speaker', got {by!r}")
  groups = collections.defaultdict(list)
  for s, g in pairs:
    groups[s].append(g)
  out = {}
  for s, gs in groups.items():
    for g, split in _deal(gs, fractions).items():
      out[(s, g)] = split
  return out


def read_splits_file(path: str) -> dict[str, str]:
  """{path as the file gives it: split} of an official split list:
  VoxCeleb1's `iden_split.txt` (`1|2|3 relpath`: train, validation, test) or
  a CSV with `path` and `split` columns (train / validation (val, dev) /
  test). ValueError naming the first line that is neither, or a path given
  twice."""
  table = {}
  with open(path, newline="", encoding="utf-8-sig") as f:
    first = f.readline()
    f.seek(0)
    if "," in first and {"path", "split"} <= {c.strip() for c in first.split(",")}:
      rows = ((n, (r.get("path") or "").strip(), (r.get("split") or "").strip().lower())
              for n, r in enumerate(csv.DictReader(f), 2))
      names = _NAMED
    else:
      rows = ((n, (line.split(None, 1) + [""])[1].strip(), line.split(None, 1)[0])
              for n, line in enumerate(f, 1) if line.strip())
      names = _NUMBERED
    for n, name, split in rows:
      if split not in names or not name:
        raise ValueError(f"{path}: line {n} is neither `1|2|3 path` nor a `path,split` row with "
                         f"split train, validation or test")
      if name in table:
        raise ValueError(f"{path}: line {n}: {name} is listed twice")
      table[name] = names[split]
  if not table:
    raise ValueError(f"{path}: no line in it")
  return table


def official_split(relpath: str, table: dict[str, str]) -> tuple[str, str] | tuple[None, None]:
  """(split, the listed path) of a corpus file: its path relative to the
  corpus root, or that path without its leading folders (VoxCeleb's lists
  name `id10001/<video>/00001.wav`, the corpus holds `wav/id10001/...`)."""
  parts = relpath.split("/")
  for k in range(len(parts)):
    name = "/".join(parts[k:])
    if name in table:
      return table[name], name
  return None, None
