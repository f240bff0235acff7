"""One module per family of acceptance checks; each has ``run(ctx) -> list[CheckResult]``."""
