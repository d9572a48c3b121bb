"""memplan's exception: the library's error, as the CLI prints it (``error:`` and ``hint:``)."""

from typing import Optional


class MemplanError(ValueError):
    """Bad input (a value, a combination of settings, a file): the same message and hint as the
    CLI's ``error:`` and ``hint:`` lines.

    ``str(err)`` is the message; ``err.hint`` says what would be valid (or is None).
    """

    def __init__(self, message: str, hint: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        # Python 3.11+ prints notes under the traceback, so the hint shows where the error does.
        if hint and hasattr(self, "add_note"):
            self.add_note("hint: " + hint)

    def __reduce__(self):  # pickling keeps the hint
        return (type(self), (self.message, self.hint))
