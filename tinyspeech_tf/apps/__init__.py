"""The ``tinyspeech`` commands: one module per command, each only ``add_arguments(parser)``
(argument parsing) and ``run(args) -> int`` (calls into the library). Nothing in the library
imports this package."""
