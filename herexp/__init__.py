"""herexp: HER experiment framework."""
