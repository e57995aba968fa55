"""`python -m pipeline.build`: the name users type for the build command.

The command runs the TFDS builder with Beam, so its body lives beside the
builder, in tfds_a2i/build.py; this module only keeps the documented name
working (docs/architecture.md). Nothing in the numpy core imports it.
"""

import sys

from tfds_a2i.build import main

if __name__ == "__main__":
  sys.exit(main())
