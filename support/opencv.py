"""OpenCV, imported once its own pixel limit is set: every module of the project takes cv2 from here.

OpenCV reads OPENCV_IO_MAX_IMAGE_PIXELS once, when cv2 is first imported; set after that import it
is never read (an 81 KB BMP of 20000 x 20000 was decoded at 2.5 GB). images.py sizes every file from
its header before decoding it; this limit is OpenCV's own second line behind that.
"""

import os

# An image of more pixels is refused before it is decoded (images.check_pixels): 100 MP take 300 MB as
# RGB, and the work on them about as much again.
MAX_PIXELS = 100_000_000
os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(MAX_PIXELS)

import cv2  # noqa: E402  (after the limit: OpenCV reads it as it loads)

cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # bad files are reported by the scripts
