"""Training, evaluation and prediction of the speaker CNN on a2i_speakers."""

import os

# Every trainer command imports this package before TensorFlow: its C++
# start-up chatter ("Could not find cuda drivers", CPU features), which
# level 2 still lets through, stays out of the console. Python errors are
# unaffected; TF_CPP_MIN_LOG_LEVEL=0 shows everything again.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
