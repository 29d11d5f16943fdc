"""cmc_lab."""
