import sys

from seeds_loader.cli import main

sys.exit(main())
