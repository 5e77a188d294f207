"""MultiHands: plausible extra annotations per image (a perturbation random walk from each image's ground truth).

:mod:`.config` the walk's settings, :mod:`.prior` the MANO pose-PCA prior, :mod:`.proxies` the bone
spheres, :mod:`.criteria` the four plausibility criteria, :mod:`.walk` the perturbation random walk of
one image, :mod:`.store` the per-sequence files, :mod:`.annotate` a whole split (resumable).
"""
