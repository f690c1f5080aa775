"""``python -m genaug ...`` (and ``torchrun ... -m genaug generate ...``): the ``genaug`` command.

Example:
    $ python -m genaug generate --model mnist-cgan --num-images 1000 --out synth/
    $ torchrun --standalone --nproc-per-node 2 -m genaug generate --model mnist-cgan -n 60000 --out synth/
"""

import sys

from genaug.cli import main

if __name__ == "__main__":
    sys.exit(main())
