"""a2i: speaker-recognition datasets by audio-to-image encoding.

`pip install -e .` for local use; `--setup_file ./setup.py` ships the same
packages to remote Beam workers (Dataflow, Flink, Spark).
"""

import setuptools

setuptools.setup(
    name="a2i",
    version="0.1.0",
    description="Audio-to-image encoding of speech, a Beam pipeline building the "
                "a2i_speakers TFDS dataset, and a CNN trainer",
    packages=setuptools.find_packages(include=["pipeline", "pipeline.*", "tfds_a2i",
                                               "tfds_a2i.*", "trainer", "trainer.*"]),
    package_data={"tfds_a2i": ["*/README.md", "*/CITATIONS.bib", "*/*.txt"]},
    python_requires=">=3.10",
    install_requires=[
        "apache-beam>=2.60",
        "tensorflow-datasets>=4.9.6",
        "array-record>=0.5",
        "librosa>=0.10.2",
        "numba>=0.59",
        "numpy>=1.26",
        "scipy>=1.11",
        "pillow>=10",
        "soundfile>=0.12.1",
        "soxr>=0.3.7",
        "av>=14",
        "espeakng-loader>=0.2.4",
        "threadpoolctl>=3.1",
        "google-crc32c>=1.5",
    ],
    extras_require={"train": ["tensorflow>=2.16", "matplotlib>=3.8", "scikit-learn>=1.3"]},
)
