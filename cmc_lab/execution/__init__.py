"""Execution: spreads, triggers and hedge tickets (synchronized legs, chase and unwind)."""
