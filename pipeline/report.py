"""The build report: every input file with its outcome, and the summary printed at the end."""

from __future__ import annotations

import collections
import json

import numpy as np

from pipeline.audio import REASONS as AUDIO_REASONS
from pipeline.corpus import CORPUS_REASONS
from pipeline.corpus.tree import unescape
from pipeline.splits import SPLITS

REASONS = {"failed": AUDIO_REASONS, "skipped": CORPUS_REASONS}
REPORT_FILE = "build_report.json"   # beside the dataset's TFRecords


def explain(status: str, reason: str) -> str:
  return REASONS.get(status, {}).get(reason, reason)


def report_record(f, status: str, reason: str = "", detail: str = "", clips: int = 0,
                  seconds: float = 0.0, sample_rate: int | None = None,
                  band: float | None = None) -> dict:
  """The report's line for a CorpusFile `f`: encoded (with its clips,
  seconds of audio, its own sample rate and the band its descriptors were
  measured over, in Hz), failed or skipped (with the reason and its detail)."""
  return {"file": f.relpath, "speaker": f.speaker, "group": f.group, "split": None,
          "status": status, "reason": reason, "detail": detail, "clips": clips,
          "seconds": round(seconds, 3), "sample_rate": sample_rate, "band_hz": band}


class BuildError(RuntimeError):
  """A build that must not produce a dataset (nothing usable, bad corpus)."""


def escaped_names(labels) -> dict:
  """Class labels that are escaped speaker names (pipeline.corpus.escape),
  each with the name it stands for (null where that is not valid UTF-8)."""
  out = {}
  for label in labels:
    name = unescape(label)
    if name != label:
      try:
        name.encode("utf-8")
      except UnicodeEncodeError:
        name = None
      out[label] = name
  return out


def leak_checks(records: list[dict], speaker_disjoint: bool = False) -> dict:
  """What the splits leak, whoever made them (a2i's own splits never do;
  an official list may): sessions with clips in two splits, speakers with
  held-out clips but none in train (no closed-set identification for
  them; not checked for speaker-disjoint splits, where that is the point),
  and the same audio kept in two splits."""
  encoded = [r for r in records if r["status"] == "encoded"]
  splits_of = collections.defaultdict(set)
  for r in encoded:
    splits_of[r["group"]].add(r["split"])
  sessions = sorted(g for g, s in splits_of.items() if len(s) > 1)
  trained = {r["speaker"] for r in encoded if r["split"] == "train"}
  split_of = {r["file"]: r["split"] for r in encoded}
  copies = sorted((r["file"], r["same_audio_as"]) for r in encoded
                  if r.get("same_audio_as") and split_of.get(r["same_audio_as"]) != r["split"])
  return {"sessions_in_several_splits": {"count": len(sessions), "examples": sessions[:10]},
          "speakers_without_training_clips": [] if speaker_disjoint else sorted(
              {r["speaker"] for r in encoded if r["split"] != "train"} - trained),
          "same_audio_in_two_splits": {"count": len(copies),
                                       "examples": [list(c) for c in copies[:10]]}}


RARE_RATE_SHARE = 0.1   # a rate this share or less of a speaker's recordings have is rare
RARE_RATE_CHECK = "recordings_at_a_rate_rare_for_their_speaker"


def rare_rate_records(records: list[dict]) -> tuple[list[dict], dict]:
  """(the encoded records at a sample rate that fewer than RARE_RATE_SHARE
  of their speaker's encoded recordings have, {speaker: Counter of rates})."""
  rates = collections.defaultdict(collections.Counter)
  encoded = [r for r in records if r["status"] == "encoded" and r.get("sample_rate")]
  for r in encoded:
    rates[r["speaker"]][r["sample_rate"]] += 1
  return [r for r in encoded if rates[r["speaker"]][r["sample_rate"]] < RARE_RATE_SHARE * sum(
      rates[r["speaker"]].values())], rates


def setup_checks(records: list[dict]) -> dict:
  """Recordings unlike their speaker's others in their sample rate: a rate
  that fewer than RARE_RATE_SHARE of the speaker's encoded recordings have
  (so only for speakers with more than 10). A folder says who spoke, not
  that one setup recorded them all; a recording made in another setup, or
  by another voice filed under the speaker, is the first a speaker model
  gets wrong (docs/training.md, "Whose recordings the misses are")."""
  rare, rates = rare_rate_records(records)
  speakers = sorted({r["speaker"] for r in rare})
  return {RARE_RATE_CHECK: {
      "count": len(rare), "share_under": RARE_RATE_SHARE,
      "speakers": {s: {str(rate): n for rate, n in rates[s].most_common()} for s in speakers},
      "examples": [[r["file"], r["sample_rate"]] for r in sorted(rare, key=lambda r: r["file"])
                   [:10]]}}


# A held-out recording whose median f0 lies more than F0_ROBUST_Z robust
# deviations (semitones) from its speaker's training recordings' is another
# voice, or the voice far from its register; a spread under F0_SPREAD_FLOOR
# semitones counts as that (a steady reader's words, a synthetic voice);
# speakers with fewer than F0_MIN_TRAINING voiced training recordings are not judged.
F0_ROBUST_Z = 3.0
F0_SPREAD_FLOOR = 0.5
F0_MIN_TRAINING = 3
PITCH_CHECK = "held_out_recordings_at_a_pitch_unlike_their_speakers_training"


def recording_f0(clip_f0s) -> float | None:
  """A recording's median f0 in Hz: the median over its clips of each clip's
  median f0 (the encoder's pitch over its voiced frames; NaN for a clip
  without one), rounded to 0.1 Hz; None where no clip has a voiced frame."""
  voiced = [float(v) for v in clip_f0s if np.isfinite(v) and v > 0]
  return round(float(np.median(voiced)), 1) if voiced else None


def semitones(hz) -> np.ndarray:
  return 12 * np.log2(np.asarray(hz, np.float64) / 100.0)


def pitch_profile(training_f0s) -> tuple[float, float] | None:
  """(median, robust spread) in semitones of a speaker's training
  recordings' median f0s (Hz; None for an unvoiced one): the spread is
  1.4826 x their median absolute deviation, at least F0_SPREAD_FLOOR; None
  with fewer than F0_MIN_TRAINING voiced ones."""
  pitches = semitones([v for v in training_f0s if v])
  if pitches.size < F0_MIN_TRAINING:
    return None
  centre = float(np.median(pitches))
  return centre, max(1.4826 * float(np.median(np.abs(pitches - centre))), F0_SPREAD_FLOOR)


def robust_z(profile: tuple[float, float] | None, f0: float | None) -> float | None:
  """How far `f0` (Hz) lies from a speaker's pitch_profile, in robust deviations."""
  if profile is None or not f0:
    return None
  return float(abs(semitones(f0) - profile[0]) / profile[1])


def judge_pitch(file: str, speaker: str, split: str, f0: float | None,
                profile: tuple[float, float] | None) -> dict | None:
  """The pitch check's row of a recording, if it is held out and its median
  f0 lies more than F0_ROBUST_Z robust deviations from its speaker's
  training profile; None otherwise."""
  z = robust_z(profile, f0) if split != "train" else None
  if z is None or z <= F0_ROBUST_Z:
    return None
  return {"file": file, "speaker": speaker, "split": split, "f0_hz": f0,
          "training_f0_hz": round(float(100 * 2 ** (profile[0] / 12)), 1),
          "robust_z": round(z, 1)}


def pitch_check(unlike: list[dict]) -> dict:
  """The report's pitch check from the judge_pitch rows of every held-out
  recording it names: all of them are listed (a run marks its test clips
  of those recordings)."""
  unlike = sorted(unlike, key=lambda r: r["file"])
  return {PITCH_CHECK: {
      "count": len(unlike), "robust_z_over": F0_ROBUST_Z,
      "spread_floor_semitones": F0_SPREAD_FLOOR,
      "training_recordings_at_least": F0_MIN_TRAINING,
      "speakers": sorted({r["speaker"] for r in unlike}), "recordings": unlike}}


def report_summary(records, counters: dict, checks: dict, config, layout: str,
                   version: str) -> dict:
  """The build report without its files: what the dataset is, the summary,
  the leak checks, the reasons and the job's counters, counted in one pass
  over `records` (the report's records in file order, any iterable), and
  the first few files not encoded as `examples` for the console."""
  status, clips, files_per_split = collections.Counter(), collections.Counter(), collections.Counter()
  speakers, failures, skipped = collections.Counter(), collections.Counter(), collections.Counter()
  bands = collections.Counter()
  seconds, examples = 0.0, []
  for r in records:
    status[r["status"]] += 1
    seconds += r.get("seconds", 0.0)
    if r["status"] == "encoded":
      clips[r["split"]] += r["clips"]
      files_per_split[r["split"]] += 1
      speakers[r["speaker"]] += r["clips"]
      if r.get("band_hz"):
        bands[r["band_hz"]] += 1
    elif r["status"] == "failed":
      failures[r["reason"]] += 1
    else:
      skipped[r["reason"]] += 1
    if r["status"] != "encoded" and len(examples) < 5:
      examples.append(r)
  return {
      "dataset": {"name": "a2i_speakers", "config": config.name, "version": version,
                  "input": config.input or f"built-in:{config.demo}", "layout": layout,
                  "image_size": config.image_size, "split_by": config.split_by,
                  "fractions": list(config.fractions),
                  "splits_file": getattr(config, "splits_file", None),
                  "escaped_speaker_names": escaped_names(config.speakers)},
      "summary": {
          "files": sum(status.values()),
          "encoded": status["encoded"], "failed": status["failed"], "skipped": status["skipped"],
          "clips": sum(clips.values()),
          "clips_per_split": {s: clips[s] for s in SPLITS},
          "files_per_split": {s: files_per_split[s] for s in SPLITS},
          "speakers": len(speakers),
          "clips_per_speaker": dict(sorted(speakers.items())),
          "speakers_without_clips": sorted(set(config.speakers) - set(speakers)),
          "failures": dict(sorted(failures.items())),
          "skipped_by_reason": dict(sorted(skipped.items())),
          "audio_seconds": round(seconds, 1),
          "files_per_band": {f"{b:g}": bands[b] for b in sorted(bands, reverse=True)},
          "working_band_hz": config.encoding.analysis_band(),
      },
      "checks": checks,
      "reasons": {"failed": {r: explain("failed", r) for r in sorted(failures)},
                  "skipped": {r: explain("skipped", r) for r in sorted(skipped)}},
      "counters": counters,
      "examples": examples,
  }


def write_report(out, summary: dict, records) -> None:
  """build_report.json to the text stream `out`: `summary` (report_summary,
  less its examples) and then every record of `records`, one at a time, in
  the layout `json.dumps(report, indent=1)` gives the whole report."""
  head = {k: v for k, v in summary.items() if k != "examples"}
  text = json.dumps(dict(head, files=[]), indent=1, ensure_ascii=False)
  assert text.endswith('"files": []\n}')
  out.write(text[:-len("[]\n}")])
  first = True
  for r in records:
    out.write(("[\n" if first else ",\n")
              + "\n".join("  " + line for line in json.dumps(r, indent=1, ensure_ascii=False)
                           .split("\n")))
    first = False
  out.write("[]\n}" if first else "\n ]\n}")


def format_summary(report: dict, location: str = "") -> str:
  d, s = report["dataset"], report["summary"]
  lines = [
      f"a2i_speakers/{d['config']} {d['version']}" + (f" -> {location}" if location else ""),
      f"  input    {d['input']} (layout: {d['layout']}, {d['image_size']} px, "
      + (f"splits from {d['splits_file']})" if d.get("splits_file")
         else f"split by {d['split_by']})"),
      f"  files    {s['files']}: {s['encoded']} encoded, {s['failed']} failed, "
      f"{s['skipped']} skipped",
      "  clips    " + ", ".join(f"{k} {v}" for k, v in s["clips_per_split"].items())
      + f" (total {s['clips']}, {s['audio_seconds']} s of audio)",
      f"  speakers {s['speakers']}" + (
          f"; without any clip: {', '.join(s['speakers_without_clips'])}"
          if s["speakers_without_clips"] else ""),
  ]
  bands = s.get("files_per_band", {})
  if any(float(b) < (s.get("working_band_hz") or 0) for b in bands):
    lines.append("  band     descriptors measured to " + ", ".join(
        f"{float(b) / 1000:g} kHz in {n} file{'s' * (n != 1)}" for b, n in bands.items())
        + " (a file sampled under the working rate: to its own Nyquist frequency)")
  checks = report.get("checks", {})
  leaks = [f"{checks['sessions_in_several_splits']['count']} sessions in several splits"
           if checks.get("sessions_in_several_splits", {}).get("count") else "",
           f"{len(checks['speakers_without_training_clips'])} speakers without training clips"
           if checks.get("speakers_without_training_clips") else "",
           f"{checks['same_audio_in_two_splits']['count']} files with the same audio in two splits"
           if checks.get("same_audio_in_two_splits", {}).get("count") else ""]
  if any(leaks):
    lines.append("  checks   " + "; ".join(x for x in leaks if x) + " (build_report.json: checks)")
  rare = checks.get(RARE_RATE_CHECK, {})
  if rare.get("count"):
    lines.append(f"  setups   {rare['count']} recording{'s' * (rare['count'] != 1)} of "
                 f"{len(rare['speakers'])} speaker{'s' * (len(rare['speakers']) != 1)} at a "
                 f"sample rate under {rare['share_under']:.0%} of their speaker's recordings "
                 "have: another setup or voice? (build_report.json: checks)")
  pitch = checks.get(PITCH_CHECK, {})
  if pitch.get("count"):
    n, speakers = pitch["count"], len(pitch["speakers"])
    lines.append(f"  pitch    {n} held-out recording{'s' * (n != 1)} of {speakers} "
                 f"speaker{'s' * (speakers != 1)} at a median pitch over "
                 f"{pitch['robust_z_over']:g} robust deviations from their speaker's training "
                 "recordings': another voice? (build_report.json: checks)")
  for title, counts in (("failed", s["failures"]), ("skipped", s["skipped_by_reason"])):
    for reason, n in counts.items():
      lines.append(f"  {title:8} {n} x {reason}: {explain(title, reason)}")
  examples = report.get("examples") or [r for r in report.get("files", ())
                                         if r["status"] != "encoded"][:5]
  for r in examples:
    lines.append(f"    {r['status']}: {r['file']}: {r['reason']}"
                 + (f" ({r['detail']})" if r.get("detail") else ""))
  if s["failed"] + s["skipped"] > len(examples):
    lines.append("    ... every file with its outcome in build_report.json")
  return "\n".join(lines)
