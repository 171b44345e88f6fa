"""Template tags every page shares: ``{% load portal %}``."""
