"""`python -m secdistill` runs the CLI (the demo and tests start workers this way)."""

from secdistill.cli import main

main()
