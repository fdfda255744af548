"""Transport-independent services shared by the HTTP API and the CLI."""
