"""Version of the data SDK (kept apart so tooling can read it without importing the SDK)."""

__version__ = "0.1.0"
