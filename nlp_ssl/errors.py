"""Errors a user can fix. Each message names the file, line or key at fault and says what to do."""


class NlpSslError(Exception):
    """Base class for every user-facing error of nlp-ssl; the CLI prints these without a traceback."""


class ConfigError(NlpSslError):
    """A config file or override is wrong; the message lists every problem found, one per line."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = list(problems)
        head = f"{len(self.problems)} problem(s) in config {source}:" if source else f"{len(self.problems)} config problem(s):"
        super().__init__("\n".join([head] + [f"  - {p}" for p in self.problems]))


class DataError(NlpSslError):
    """A data source cannot be read as configured (missing file, bad bytes, missing column, Hub unreachable...)."""


class TokenizerError(NlpSslError):
    """A tokenizer cannot be trained or used as configured."""
