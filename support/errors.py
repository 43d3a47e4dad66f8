"""The one error for what a user gave that cannot be used: a wrong file, folder, option or model.

Every module here and every script's helper raises InputError with the message alone; only
runner.run_script turns it into the line "error: <message>" on stderr and exit status 1. So a
function called from Python (a test, a notebook) raises an exception to catch, never exits.
Every exit status but 1 comes from elsewhere: 2 from argparse for a wrong option, 130 from Ctrl-C
(runner.py). An image among many that cannot be read is images.ImageError instead (see there).
"""


class InputError(Exception):
    """What is wrong with an input and, where it helps, what to do: "--out x is a file; give a folder"."""
