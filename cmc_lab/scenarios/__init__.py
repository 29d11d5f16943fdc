"""The seed's scenarios, replayed on the embedded exchange beside the figures they test."""
