"""Tables and statistics over stored runs: Table 1 cells, Student-t intervals, rliable, the regression bands; no torch, no algorithm."""
