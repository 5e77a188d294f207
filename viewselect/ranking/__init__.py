"""The computation of ``viewselect rank`` (and of the report's extras): request -> outcome."""
