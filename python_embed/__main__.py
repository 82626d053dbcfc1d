"""`python -m python_embed build | query | keywords`: the bildsuche command line's commands of this folder."""

import sys

from bildsuche.cli import module_main

sys.exit(module_main("python_embed", ("build", "query", "keywords")))
