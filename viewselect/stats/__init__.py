"""Statistics over the per-view records: regret, ranks and rankers, the bootstrap, the default drop rule and the verdict, ranking stability."""
