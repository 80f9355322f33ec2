"""Errors raised for bad input: configs, files, model names and image tensors."""


class InputError(ValueError):
    """Bad user input; the message names the offending key or file and what is allowed."""


class NumericalError(RuntimeError):
    """A computation produced NaN or inf; the message says where and what to try."""
