"""Pricing: spread math (units, FX, import terms, executable prices, the spread kernel); pure."""
