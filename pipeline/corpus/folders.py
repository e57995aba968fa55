"""Folder per speaker: `root/<speaker>/**/<audio>`; each file is its own recording."""

from pipeline.corpus.tree import speaker_files


def matches(root: str) -> bool:
  return True


def files(root: str):
  return speaker_files(root)
