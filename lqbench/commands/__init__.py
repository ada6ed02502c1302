"""Sub-commands of the ``lqbench`` command line (see `lqbench.cli`)."""
