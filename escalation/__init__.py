"""CI failure escalation matrix (seed 004), catalog requests (seed 000), job failures (seed 002)."""
