"""Training, evaluation and prediction of the speaker networks on a2i_speakers."""
