"""Venues: the embedded exchange (sim), FIX 4.4 gateways and recorded-quote replay."""
