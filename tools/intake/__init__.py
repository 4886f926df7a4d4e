"""The evidence intake (docs/offload.md): `bwc intake init|enroll|serve`, a stateless
HTTP service that verifies every segment on arrival and signs custody receipts, over a
file tree or any S3-compatible store."""
