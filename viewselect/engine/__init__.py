"""The model on every (sequence, camera): per-view records, cached, sharded, with the sample overlays."""
