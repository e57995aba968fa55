"""TensorFlow Datasets builders of a2i. `import tfds_a2i` registers `a2i_speakers`."""

from tfds_a2i.a2i_speakers.a2i_speakers_dataset_builder import A2iSpeakersConfig, Builder

__all__ = ["A2iSpeakersConfig", "Builder"]
