"""The Textual TUI: renders the engine's state and sends it commands; never writes SQL or folds events."""
