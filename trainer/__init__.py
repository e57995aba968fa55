"""Training, evaluation and prediction of the speaker CNN on a2i_speakers."""

import os

from trainer import quiet

# Every trainer command imports this package before TensorFlow: its C++
# info and warning lines stay out of the console (TF_CPP_MIN_LOG_LEVEL=0
# shows them again), and so do the start-up notes no level hides
# (trainer/quiet.py). Errors are unaffected.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ["TF_CPP_MIN_LOG_LEVEL"] != "0":
  quiet.install()
