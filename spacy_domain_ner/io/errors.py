"""The error of bad input at a known place, shared by every reader."""


class LocatedError(ValueError):
    """Bad input. The message starts with its location (file:line, or file record N)."""

    def __init__(self, location: str, message: str) -> None:
        super().__init__(f"{location}: {message}")
        self.location = location
