"""`python3 -I -m kiln_agent` with the runtime directory on sys.path."""

from .main import main

main()
