"""The rules a supervisor could read: pure functions on plain values, no I/O."""
