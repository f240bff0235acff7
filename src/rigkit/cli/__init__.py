"""The command line: one module per command group; each is parsing + a library call + rendering."""
