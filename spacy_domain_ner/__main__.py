import sys

# Project steps declare whole subpackages as deps and weasel checksums every file in them:
# bytecode written into the source tree by one step would make another step look stale.
sys.dont_write_bytecode = True

from .cli import app  # noqa: E402

if __name__ == "__main__":
    app()
