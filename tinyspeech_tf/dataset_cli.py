"""Placeholder replaced while this command is being written."""

from tinyspeech_tf.errors import UserError


def add_arguments(parser):
    pass


def run(args):
    raise UserError("this command is not implemented yet")
