import sys

from linscale.cli import main

sys.exit(main())
