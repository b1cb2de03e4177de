"""A plugin file that is not valid Python."""

def broken(:
    pass
