"""The fault-injection and hostile-input battery (docs/reliability.md)."""
