import sys

from homogan.cli import main

sys.exit(main())
