"""Every conversation with the outside world: Jira, ServiceNow, Slack, Linear, GitHub (seed 003)."""
