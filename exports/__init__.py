"""Session export to Jira (seed 001)."""
