"""Security policy: the YAML model, MAC/DAC decisions, and safe reload."""
