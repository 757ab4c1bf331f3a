"""User-facing errors: the CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """A mistake in what the user asked for or gave us (a bad file, argument or model name).

    The message must say what is wrong, where, and how to fix it; the CLI prints it without a
    traceback.
    """
