"""Custodian and bench tools: thin command-line layers over device/ modules."""
