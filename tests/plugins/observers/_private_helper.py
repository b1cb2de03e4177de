"""Files starting with an underscore are not loaded as plugins."""

raise RuntimeError("must never be imported")
