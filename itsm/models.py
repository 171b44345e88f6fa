"""Tables of the itsm app."""
