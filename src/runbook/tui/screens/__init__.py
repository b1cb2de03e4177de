"""Screens: home (incidents, catalog, drills), incident, help."""
