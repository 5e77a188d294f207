"""The one error type users see: a one-line message naming what is wrong and where."""


class HandflowError(Exception):
    """Bad input or state. ``str(err)`` is a single line fit for a terminal."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
