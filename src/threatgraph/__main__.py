"""``python -m threatgraph``."""

from threatgraph.cli import entry

if __name__ == "__main__":
    entry()
