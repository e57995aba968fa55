"""LibriSpeech: `root/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`.

Utterances of one chapter are cut from one recording session, so the chapter
is the split group: putting some of its utterances in train and others in
test would leak the session (room, microphone, reading) across the split.
"""

import re

from pipeline.corpus.tree import speaker_files, subfolders

_DIGITS = re.compile(r"^\d+$")


def matches(root: str) -> bool:
  speakers = subfolders(root)
  if not speakers or not all(_DIGITS.match(d) for d in speakers):
    return False
  return any(_DIGITS.match(c) for c in subfolders(root.rstrip("/") + "/" + speakers[0]))


def files(root: str):
  return speaker_files(root, group_of=lambda parts: "/".join(parts[:2]))
