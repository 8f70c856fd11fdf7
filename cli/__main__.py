"""python -m forkpoint.cli"""

from forkpoint.cli.main import main

main()
