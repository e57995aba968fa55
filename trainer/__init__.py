"""Training, evaluation and prediction of the speaker CNN on a2i_speakers."""
