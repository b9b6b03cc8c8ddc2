"""Talking to the providers: clients, endpoints, retries, sources, readers of their files, staging onto the grid."""
