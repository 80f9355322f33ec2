"""Errors raised for bad input: configs, files, model names and image tensors."""


class InputError(ValueError):
    """Bad user input; the message names the offending key or file and what is allowed."""


class NumericalError(RuntimeError):
    """A computation produced NaN or inf; the message says where and what to try."""


def brief(error: Exception, limit: int = 400) -> str:
    """``error``'s message cut to ``limit`` characters (state-dict errors list every key)."""
    text = str(error)
    return text if len(text) <= limit else text[:limit] + " [...]"
