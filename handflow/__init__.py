"""handflow: two-hand pose distributions from images (HandFlow, Wang et al. 2022)."""

__version__ = "0.1.0"
