"""``python -m eventstore._cli``: the same as the ``eventstore`` console script."""

from . import main

main()
