"""Release copies: redaction, release records, content credentials (docs/release.md)."""
