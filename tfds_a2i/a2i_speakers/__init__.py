"""a2i_speakers dataset."""
