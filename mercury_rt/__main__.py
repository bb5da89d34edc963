"""`python -m mercury_rt` runs the console script."""

from mercury_rt.cli.main import main

main()
