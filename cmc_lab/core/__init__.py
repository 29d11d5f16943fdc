"""Core: the domain model, clocks, specs, the live Order and the ports the parts meet through (no IO)."""
