"""The ITSM SaaS type for esbgen."""
