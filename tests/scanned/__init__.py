"""A package for config.scan() tests: jobs, an abstract base, strategies."""
