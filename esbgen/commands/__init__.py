"""One module per command: its operation for esbgen.runner, and what only it needs."""
