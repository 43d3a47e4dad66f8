"""Text from outside (file names, class names, cells) shown safely: on a terminal, in a spreadsheet."""


def printable(text):
    """A name as the terminal should show it: control characters (a newline, ANSI escapes) escaped,
    so a file name cannot forge a line of output."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text))


def neutral_cell(cell):
    """A CSV cell that a spreadsheet shows as text, never runs as a formula (OWASP's CSV injection
    advice): text beginning with = + - @ tab or CR gets a leading single quote."""
    return f"'{cell}" if isinstance(cell, str) and cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


class NeutralWriter:
    """A csv.writer whose every cell goes through neutral_cell."""

    def __init__(self, writer):
        self.writer = writer

    def writerow(self, row):
        self.writer.writerow([neutral_cell(cell) for cell in row])

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)
