"""The embedded exchange: order books, matching, scripted faults, the simulated venue."""
