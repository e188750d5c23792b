"""The ESB's database: URLs, connections through DB-API drivers, rows, registration, sync rows."""
