import sys

from firmware.prompts.cli import run

sys.exit(run())
