"""The journal: what a change did, kept so it can be rolled back, recovered and undone."""
