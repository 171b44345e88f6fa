"""Business rules of the itsm app, one module a capability."""
