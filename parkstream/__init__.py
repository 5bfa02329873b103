"""parkstream."""
