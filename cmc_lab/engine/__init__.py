"""Engine: the facade, its loop thread, order routing, journaling, recovery and ``connect()``."""
