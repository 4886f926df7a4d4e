"""`bwc bench`: the bench harness (docs/bench.md).

model.py is the contract every suite and measurement shares: a suite returns Figures
(repeated samples, a peer's samples from the same run) and Series (for plots); the
harness judges Figures against thresholds (defaults.toml) and writes the report.
"""
