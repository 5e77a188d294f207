"""MultiHands: plausible extra annotations per image (DESIGN §5, paper §4).

:mod:`.config` the walk's settings, :mod:`.prior` the MANO pose-PCA prior, :mod:`.proxies` the bone
spheres, :mod:`.criteria` the four plausibility criteria, :mod:`.walk` the perturbation random walk of
one image, :mod:`.store` the per-sequence files, :mod:`.annotate` a whole split (resumable).
"""
