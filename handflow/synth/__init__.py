"""The embedded synthetic capture: generated MANO files, camera rigs, interaction motions, skin and
lighting, and the renderer that writes it all in the InterHand2.6M layout, which the real-data reader
(:mod:`handflow.data.interhand`) then reads like any capture. Nothing of the real-data reader imports it."""
