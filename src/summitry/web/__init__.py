"""The HTTP face of summitry: REST API, event streams and pages."""
