"""trainer.openset: is this voice one of the trained speakers at all?"""

import numpy as np

from tests.helpers import tone


def test_the_open_set_answer_tells_voices_apart_from_tones_and_strangers():
  """Profiles from one voice's descriptors accept that voice's other clips
  and refuse another voice and a tone, whatever a classifier would say."""
  from pipeline.encode import encode_clip
  from pipeline.espeak import synthesize
  from pipeline.audio import to_working_rate
  from trainer import openset

  def descriptors(voice, pitch, text):
    x, sr = synthesize(text, voice, pitch=pitch)
    return encode_clip(to_working_rate(x, sr)[:65536], 64).descriptors

  texts = [f"Sentence number {i} is read here at an even pace for the test." for i in range(8)]
  known = np.array([descriptors("en+f3", 80, t) for t in texts] +
                   [descriptors("en+m3", 15, t) for t in texts])
  labels = np.array([0] * 8 + [1] * 8)
  names = ["hi", "lo"]
  model = openset.fit(known[::2], labels[::2], names)
  held_out, held_labels = known[1::2], labels[1::2]
  limit = openset.threshold(model, held_out, held_labels, names)
  own = openset.distances(model, held_out, [names[k] for k in held_labels])
  other = openset.distances(model, held_out, [names[1 - k] for k in held_labels])
  stranger = descriptors("en-us+m1", 50, texts[0])
  beep = encode_clip(tone(440, 4.096), 64, require_speech=False).descriptors
  d_stranger, d_beep = openset.distances(model, np.array([stranger, beep]), ["hi", "hi"])
  # The threshold keeps its promise (95 % of 8 held-out clips: all but at most one)...
  assert (own <= limit).sum() >= len(own) - 1
  # ...and sits in a gap: every held-out clip is nearer its own voice than to the
  # other voice, and nearer than the stranger and the tone are to the voice named.
  # (eSpeak NG carries state between utterances, so the clips, and which one is
  # farthest, vary with what the process synthesised before.)
  assert own.max() < min(other.min(), d_stranger)
  assert limit < d_stranger < d_beep
