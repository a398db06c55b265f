"""The original tool's command line: `python main.py 10 1024x576 --stable-diffusion`."""

import sys

from imagebot.bot.cli import main
from imagebot.bot.legacy_cli import translate

if __name__ == "__main__":
    sys.exit(main(translate(sys.argv[1:])))
