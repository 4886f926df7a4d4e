"""`bwc offload`: send a device's closed segments and audit log to an evidence intake (docs/offload.md §8)."""
