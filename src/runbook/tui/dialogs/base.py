"""What every dialog shares: no toast is drawn over it."""

from __future__ import annotations

from typing import TypeVar

from textual.screen import ModalScreen
from textual.widgets._toast import ToastRack

T = TypeVar("T")


class Dialog(ModalScreen[T]):
    """A modal dialog without Textual's toast rack: a toast raised while it is open waits on the
    screen under it (toasts are drawn on the top screen only), so it never covers the question,
    its choices or its keys."""

    def _extend_compose(self, widgets: list) -> None:
        super()._extend_compose(widgets)
        widgets[:] = [widget for widget in widgets if not isinstance(widget, ToastRack)]
