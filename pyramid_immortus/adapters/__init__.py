"""The built-in queue adapters."""
