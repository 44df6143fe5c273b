import sys

from coord.cli import main

sys.exit(main())
