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
  model = openset.fit(known[::2], labels[::2], ["hi", "lo"])
  limit = openset.threshold(model, known[1::2], labels[1::2], ["hi", "lo"])
  stranger = descriptors("en-us+m1", 50, texts[0])
  beep = encode_clip(tone(440, 4.096), 64, require_speech=False).descriptors
  d = openset.distances(model, np.array([known[1], stranger, beep]), ["hi", "hi", "hi"])
  assert d[0] <= limit < d[1] < d[2]
