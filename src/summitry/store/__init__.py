"""The database: models, migrations and the queries the orchestrator needs."""
