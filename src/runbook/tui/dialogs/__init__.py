"""Modal dialogs: an alert, confirm, choose, type a line, fill in parameters. Each is imported when first shown, so the
incident screen does not load their widgets (inputs, option lists) before its first frame."""

_WHERE = {"AlertDialog": "alert", "ChoiceDialog": "choice", "ConfirmDialog": "confirm", "ParameterForm": "parameters",
          "TextPrompt": "prompt"}


def __getattr__(name):
    if name in _WHERE:
        from importlib import import_module

        return getattr(import_module(f"runbook.tui.dialogs.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'runbook.tui.dialogs' has no attribute {name!r}")
