"""The pure domain: summits, sides, roles, the phase machine and times. No I/O here."""
