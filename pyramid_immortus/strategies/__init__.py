"""The built-in tracking strategies."""
