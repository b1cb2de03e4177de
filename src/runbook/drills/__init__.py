"""Drills: rehearsals of playbooks. Simulated responders drive the real engine on a virtual clock."""
