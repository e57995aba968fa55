"""A CSV or JSONL manifest: one row per file with `path` and `speaker`.

Paths are relative to the manifest's folder, which is the corpus root: a path
that resolves outside it is refused. An optional `group` (or `session`)
column names recording sessions that must not be split.
"""

import csv
import json
import os

from pipeline.corpus.tree import CorpusFile, escape, is_audio, special_kind


def matches(root: str) -> bool:
  return os.path.isfile(root)


def _rows(path):
  # utf-8-sig: spreadsheet programs start their CSV with a byte-order mark;
  # newline="" lets the csv module take CRLF line ends as they come.
  with open(path, newline="", encoding="utf-8-sig") as f:
    if path.lower().endswith((".jsonl", ".json", ".ndjson")):
      for n, line in enumerate(f, 1):
        if line.strip():
          row = json.loads(line)
          if not isinstance(row, dict):
            raise ManifestError(f"{path}: line {n} is a JSON {type(row).__name__}, "
                                "not an object with 'path' and 'speaker'")
          yield n, row
    else:
      for n, row in enumerate(csv.DictReader(f), 2):
        yield n, row


class ManifestError(ValueError):
  pass


def files(manifest_path: str):
  root = os.path.dirname(os.path.abspath(manifest_path))
  real_root = os.path.realpath(root)
  seen = set()
  try:
    rows = list(_rows(manifest_path))
  except (json.JSONDecodeError, csv.Error, UnicodeDecodeError) as e:
    raise ManifestError(f"{manifest_path}: not a readable CSV/JSONL manifest ({e})") from None
  if rows and not {"path", "speaker"} <= set(rows[0][1]):
    raise ManifestError(f"{manifest_path}: needs 'path' and 'speaker' columns, "
                        f"found {sorted(rows[0][1])}")
  for line, row in rows:
    rel = str(row.get("path") or "").strip()
    speaker = escape(str(row.get("speaker") or "").strip())
    path = os.path.normpath(os.path.join(root, rel))
    shown = (escape(os.path.relpath(path, root).replace(os.sep, "/")) if rel
             else f"<line {line}: empty path>")
    f = CorpusFile(path, shown, speaker or None, str(row.get("group") or row.get("session")
                                                     or shown))
    real = os.path.realpath(path)
    if os.path.commonpath([real, real_root]) != real_root:
      yield f.refused("outside_root", f"line {line}")
    elif real in seen:
      yield f.refused("duplicate", f"line {line}")
    elif special_kind(path):
      yield f.refused("special_file", f"line {line}: {special_kind(path)}")
    elif not os.path.isfile(path):
      yield f.refused("missing", f"line {line}")
    elif not speaker:
      yield f.refused("no_speaker", f"line {line}: empty speaker")
    elif not is_audio(rel):
      yield f.refused("not_audio", os.path.splitext(rel)[1].lower() or "no extension")
    else:
      yield f
    seen.add(real)
