"""LibriSpeech: `root/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`.

Utterances of one chapter are cut from one recording session, so the chapter
is the split group: putting some of its utterances in train and others in
test would leak the session (room, microphone, reading) across the split.
"""

import os
import re

from pipeline.corpus.tree import speaker_files

_DIGITS = re.compile(r"^\d+$")


def matches(root: str) -> bool:
  try:
    speakers = [d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))]
  except OSError:
    return False
  if not speakers or not all(_DIGITS.match(d) for d in speakers):
    return False
  first = os.path.join(root, sorted(speakers)[0])
  return any(_DIGITS.match(c) and os.path.isdir(os.path.join(first, c))
             for c in os.listdir(first))


def files(root: str):
  return speaker_files(root, group_of=lambda parts: "/".join(parts[:2]))
