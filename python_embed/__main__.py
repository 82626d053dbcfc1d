import sys

from python_embed.cli import main

sys.exit(main())
