"""The one exception the assembler raises: it names the line and the text at fault."""

from __future__ import annotations


class AsmError(Exception):
    """An assembly error at source line ``line`` (1-based); ``text`` is that line as written.

    ``str(err)`` reads ``line 3: <what is wrong>\\n    3 | <the line>``.
    """

    def __init__(self, message: str, line: int | None = None, text: str | None = None):
        self.message = message
        self.line = line
        self.text = text
        super().__init__(self._render())

    def _render(self) -> str:
        if self.line is None:
            return self.message
        out = f"line {self.line}: {self.message}"
        if self.text is not None:
            out += f"\n    {self.line} | {self.text.rstrip()}"
        return out

    def at(self, line: int, text: str) -> "AsmError":
        """Attach a position to an error raised where the line was not known."""
        if self.line is None:
            self.line, self.text = line, text
            self.args = (self._render(),)
        return self
