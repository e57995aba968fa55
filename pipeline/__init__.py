"""a2i: audio clips to RGB images, and the Beam pipeline that builds datasets of them."""
