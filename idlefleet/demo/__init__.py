"""`idlefleet demo`: a simulated day end to end (`run`) and its scored summary (`summary`)."""
