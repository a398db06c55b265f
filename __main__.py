"""`python -m imagebot`: the same command line as the `imagebot` script."""

import sys

from imagebot.bot.cli import main

sys.exit(main())
