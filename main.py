"""Train a GAN: ``python main.py [--config config.json] [--set KEY.PATH=VALUE ...] [--resume RUN_DIR]``."""

import sys

from homogan.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
