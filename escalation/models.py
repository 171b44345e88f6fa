"""Tables of the escalation app."""
