"""Widgets of the incident screen; each renders one part of an IncidentView."""
