"""Errors a user can fix. Each message names the file, line or key at fault and says what to do.

Every class has its own exit code, so scripts can tell the kinds apart (`nlp-ssl` prints these errors as one
paragraph, without a traceback unless `--debug`; see docs/errors.md for the catalogue):

    exit code  class          what is wrong
    1          NlpSslError    anything else a user can fix
    2          (argparse)     the command line itself (unknown option, missing argument)
    3          ConfigError    a config file, key, value or override
    4          DataError      a data file or source (missing, unreadable, malformed line, missing column)
    5          OutputError    where outputs go (a file in the way, unwritable, full disk, someone else's folder)
    6          ModelError     a model or tokenizer: missing, of the wrong kind, or not matching the data/each other
    7          TrainingError  training cannot go on (non-finite loss, a lost process)
    8          HubError       the Hugging Face Hub refused or cannot be reached (token, network, repository)
    70         (internal)     a bug: printed with its traceback
    130        (interrupted)  Ctrl-C
"""


class NlpSslError(Exception):
    """Base class for every user-facing error of nlp-ssl; the CLI prints these without a traceback."""

    exit_code = 1
    kind = "error"


class ConfigError(NlpSslError):
    """A config file or override is wrong; the message lists every problem found, one per line."""

    exit_code = 3
    kind = "config error"

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = list(problems)
        head = f"{len(self.problems)} problem(s) in config {source}:" if source else f"{len(self.problems)} config problem(s):"
        super().__init__("\n".join([head] + [f"  - {p}" for p in self.problems]))


class DataError(NlpSslError):
    """A data source cannot be read as configured (missing file, bad bytes, missing column, Hub unreachable...)."""

    exit_code = 4
    kind = "data error"


class OutputError(NlpSslError):
    """An output cannot be written where asked (a file in the way, no permission, full disk, a folder that another
    command or person made); found before the work starts."""

    exit_code = 5
    kind = "output error"


class ModelError(NlpSslError):
    """A model or tokenizer is missing, of the wrong kind (no trained head), or does not match the data or each
    other (vocabulary size, special token ids)."""

    exit_code = 6
    kind = "model/tokenizer error"


class TokenizerError(ModelError):
    """A tokenizer cannot be trained or used as configured."""


class TrainingError(NlpSslError):
    """Training cannot go on (non-finite loss, ...); the message names the step and the last good checkpoint."""

    exit_code = 7
    kind = "training error"


EXIT_INTERNAL = 70  # an unexpected exception: a bug, reported with its traceback
EXIT_INTERRUPTED = 130
