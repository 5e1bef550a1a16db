"""OpenADR 2.0b: a VEN (openleadr) whose answers come from the optimizer."""
