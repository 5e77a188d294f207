"""What a set of kept cameras costs: the coverage keep rule, multi-view triangulation, error against the number of cameras."""
