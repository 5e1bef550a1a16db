"""One module per `idlefleet` command; each exposes `register(commands)`.

The only place that wires the packages together at the top.
"""

#: Exit status of a command given input it cannot use (a bad option, file or field); 1 means
#: it ran but its outcome failed its own check (an infeasible plan, a run that lost work).
EXIT_BAD_INPUT = 2
