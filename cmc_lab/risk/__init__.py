"""Risk: pre-trade checks, capital and margin, threshold rules and their actions."""
