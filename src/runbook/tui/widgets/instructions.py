"""Instructions as Markdown, with fenced shell blocks broken between arguments (widgets/commands.py).
Imported off the UI thread once the first frame is drawn: rich's Markdown is slow to import."""

from __future__ import annotations

from rich.markdown import CodeBlock, Markdown
from rich.syntax import Syntax

from runbook.tui.widgets.commands import shell_block

SHELLS = frozenset({"sh", "bash", "shell", "console", "zsh", "shell-session"})


class ShellCodeBlock(CodeBlock):
    """A fenced shell block in instructions: broken between arguments at the width it is drawn at."""

    def __rich_console__(self, console, options):
        code = str(self.text).rstrip()
        if self.lexer_name in SHELLS:
            code = shell_block(code, max(20, options.max_width - 2))  # the block's padding: a cell each side
        yield Syntax(code, self.lexer_name, theme=self.theme, word_wrap=True, padding=1)


class Instructions(Markdown):
    """Markdown whose shell blocks wrap between arguments (ShellCodeBlock)."""

    elements = {**Markdown.elements, "fence": ShellCodeBlock, "code_block": ShellCodeBlock}
