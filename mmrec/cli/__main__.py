import sys

from mmrec.cli.main import main

sys.exit(main())
