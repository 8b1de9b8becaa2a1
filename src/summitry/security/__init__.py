"""Grants (who may do what) and the audit chain (what was done)."""
