import sys

from aelab.cli import main

sys.exit(main())
