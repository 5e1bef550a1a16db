"""Fault injection: `idlefleet chaos` kills and freezes the parts and checks nothing is lost."""
