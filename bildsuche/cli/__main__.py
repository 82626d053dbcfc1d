import sys

from bildsuche.cli import main

sys.exit(main())
