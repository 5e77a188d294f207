"""``viewselect plan``: a proposed rig read from its file, rendered, ranked and summarised."""
