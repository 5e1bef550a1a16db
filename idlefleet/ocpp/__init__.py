"""OCPP 2.0.1 and 1.6J: a central system whose charging profiles carry out the plan."""
