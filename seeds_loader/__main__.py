"""`python -m seeds_loader DIR`: the bildsuche command line's `load`."""

import sys

from bildsuche.cli import module_main

sys.exit(module_main("seeds_loader", ("load",)))
