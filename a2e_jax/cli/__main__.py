"""`python -m a2e_jax.cli`: the `a2e` command."""

import sys

from a2e_jax.cli import main

sys.exit(main())
