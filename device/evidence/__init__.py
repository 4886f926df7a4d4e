"""Evidence format v1 (docs/format.md): segment files, audit log, keys.

Shared by the firmware (writing) and the custodian tools (verifying, decrypting):
verification never re-implements parsing.
"""
