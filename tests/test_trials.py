"""pipeline.trials: a seeded, balanced trials list for a corpus without one."""

import collections

import pytest

from pipeline.trials import draw_trials
from tests.helpers import cli


def corpus(speakers=6, sessions=3, per_session=2):
  return [(f"id{s:05d}/v{g}/{u:05d}.wav", f"id{s:05d}", f"id{s:05d}/v{g}")
          for s in range(speakers) for g in range(sessions) for u in range(per_session)]


def test_trials_are_balanced_seeded_and_pair_other_sessions():
  files = corpus()
  trials = draw_trials(files, per_file=2, seed=0)
  assert trials == draw_trials(list(reversed(files)), per_file=2, seed=0)
  assert trials != draw_trials(files, per_file=2, seed=1)
  speaker = {p: s for p, s, _ in files}
  session = {p: g for p, _, g in files}
  pairs = [tuple(sorted((a, b))) for _, a, b in trials]
  assert len(pairs) == len(set(pairs)) and all(a != b for a, b in pairs)
  for label, a, b in trials:
    assert label == (speaker[a] == speaker[b])
    if label:
      assert session[a] != session[b]          # every speaker here has other sessions
  counts = collections.Counter(label for label, _, _ in trials)
  assert abs(counts[1] - counts[0]) <= 0.2 * len(trials)
  # Every file is in a trial of each kind.
  for kind in (0, 1):
    assert {p for label, a, b in trials if label == kind for p in (a, b)} == set(speaker)


def test_a_speaker_with_one_file_gets_no_target_trial():
  files = corpus(speakers=3) + [("id09999/v0/00000.wav", "id09999", "id09999/v0")]
  trials = draw_trials(files, per_file=1, seed=0)
  alone = [t for t in trials if "id09999/v0/00000.wav" in t[1:]]
  assert alone and all(label == 0 for label, _, _ in alone)


@pytest.mark.parametrize("argv,message", [
    (["--input", "/no/such/folder"], "no such folder"),
    (["--report", "/no/such/report.json"], "give --input"),
    (["--per_file", "0"], "--per_file must be positive"),
])
def test_bad_flags_are_one_line(tmp_path, argv, message):
  out = cli("pipeline.trials", "--input", str(tmp_path), "--output", str(tmp_path / "t.txt"),
            *argv, check=False)
  assert out.returncode == 2 and message in out.stderr
  assert len(out.stderr.strip().splitlines()) == 1
