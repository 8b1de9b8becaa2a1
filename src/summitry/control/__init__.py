"""The orchestrator: commands in, machine applied, state and audit persisted in one
transaction, then effects carried out and announced."""
