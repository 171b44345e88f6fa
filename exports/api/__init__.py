"""The exports app's API: /api/v1/sessions and the seed's /api/jira/ endpoints."""
