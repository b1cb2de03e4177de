"""Built-in behaviour, written as ordinary plugins and registered like third-party ones."""
