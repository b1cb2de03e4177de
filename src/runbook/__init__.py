"""runbook: incident-response runbook executor and drill simulator."""

__version__ = "0.1.0"
