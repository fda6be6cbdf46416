import sys

from mncrl.cli import main

sys.exit(main())
