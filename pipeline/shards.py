"""Shard plans: which clips of which recordings each output file holds.

The plan is made once, from the analysis pass's per-file clip counts, and is
a pure function of them and the settings: the same corpus gives the same
shards, with the same examples in the same order, on one core or a thousand.

Within a split, recordings are ordered by a hash of their path (so speakers
and sessions are mixed across files) and dealt, whole, into shards of at
most `clips_per_shard` clips; only a recording longer than that gets a shard
of its own that is larger (which clips a recording keeps depends on its
whole signal, so it is encoded in one piece). A shard's size is thus bounded
by the settings (shard target, --max_seconds), never by the corpus. Each
shard is one task: decode, cut, encode and write, in one worker, with
nothing heavier than this plan crossing a shuffle.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math

from pipeline import splits
from pipeline.corpus import CorpusFile
from pipeline.fingerprint import Fingerprint, first_of_each

# Shards are the unit of parallel work and of memory. ~16 MiB of examples
# keeps a worker's working set small and reads efficient; MIN_TASKS shards in
# all (when there are clips enough) keep 64 cores busy on a mid-size corpus.
# One size for every split: runners that hand each worker an equal number of
# tasks (Beam's local runner) then hand each an equal amount of work.
SHARD_TARGET_BYTES = 16 << 20
MIN_TASKS = 256
MIN_CLIPS = 16


def example_bytes(image_size: int) -> int:
  """Rough size of one serialised example: PNG at zlib level 1 of a plane
  of noise-like waveform (green) and two smooth planes, plus descriptors."""
  return int(0.36 * 3 * image_size * image_size) + 1024


def clips_per_shard(image_size: int, corpus_clips: int) -> int:
  by_bytes = SHARD_TARGET_BYTES // example_bytes(image_size)
  by_count = math.ceil(corpus_clips / MIN_TASKS)
  return max(MIN_CLIPS, min(by_bytes, by_count))


def order_key(text: str) -> str:
  return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


@dataclasses.dataclass(frozen=True)
class ShardTask:
  split: str
  index: int
  num_shards: int
  files: tuple[tuple[CorpusFile, int], ...]   # (recording, clips the analysis found)

  @property
  def num_clips(self) -> int:
    return sum(n for _, n in self.files)


@dataclasses.dataclass(frozen=True)
class Plan:
  split_of: dict[str, str]             # relpath -> split, for every file encoded
  tasks: tuple[ShardTask, ...]
  duplicates: dict[str, str] = dataclasses.field(default_factory=dict)  # relpath -> first one
  official: bool = False               # splits from an official list: duplicates kept, reported

  def clips_per_split(self) -> dict[str, int]:
    out = dict.fromkeys(splits.SPLITS, 0)
    for t in self.tasks:
      out[t.split] += t.num_clips
    return out


def plan(analysed: list[tuple[CorpusFile, int, Fingerprint]], image_size: int,
         fractions=(0.8, 0.1, 0.1), by: str = "recording") -> Plan:
  """analysed: (file, clips it gives, fingerprint of its audio) for every
  file the analysis could cut. Of files holding the same recording, in any
  sample format (pipeline.fingerprint), the first by path is encoded and
  the others are duplicates of it: the same audio never lands in two
  splits, or under two speakers."""
  usable = {f.relpath: (f, n, fp) for f, n, fp in analysed if n > 0}
  duplicates = first_of_each((name, fp) for name, (_, _, fp) in usable.items())
  official = any(f.split is not None for f, _, _ in usable.values())
  if official:
    # The official list decides: every listed file keeps its split, copies
    # included (the report names them, as a leak check).
    analysed = [(f, n) for _, (f, n, _) in sorted(usable.items())]
    split_of = {f.relpath: f.split for f, _ in analysed}
  else:
    analysed = [(f, n) for name, (f, n, _) in sorted(usable.items()) if name not in duplicates]
    assignment = splits.assign({(f.speaker, f.group) for f, _ in analysed}, fractions, by)
    split_of = {f.relpath: assignment[(f.speaker, f.group)] for f, _ in analysed}
  size = clips_per_shard(image_size, sum(n for _, n in analysed))
  tasks = []
  for split in splits.SPLITS:
    members = sorted(((f, n) for f, n in analysed if split_of[f.relpath] == split),
                     key=lambda fn: (order_key(fn[0].relpath), fn[0].relpath))
    if not members:
      continue
    shards, current, count = [], [], 0
    for f, n in members:
      if current and count + n > size:
        shards.append(tuple(current))
        current, count = [], 0
      current.append((f, n))
      count += n
    shards.append(tuple(current))
    tasks += [ShardTask(split, i, len(shards), files) for i, files in enumerate(shards)]
  return Plan(split_of, tuple(tasks), duplicates, official)
