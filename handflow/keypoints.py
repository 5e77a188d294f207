"""The 42-keypoint two-hand layout (InterHand2.6M order): the one place it is defined.

Right hand = keypoints 0-20, left hand = 21-41. Per hand: thumb tip->base (0-3), index (4-7),
middle (8-11), ring (12-15), pinky (16-19), wrist 20 (the root). ``hand_index`` 0 is the right
hand, 1 the left, everywhere a tensor has a hands axis ``(B, 2, ...)``.
"""

from __future__ import annotations

import numpy as np

HANDS = ("right", "left")
FINGERS = ("thumb", "index", "middle", "ring", "pinky")
JOINTS_PER_HAND = 21
N_JOINTS = 2 * JOINTS_PER_HAND  # 42
WRIST_IN_HAND = 20  # the wrist's index inside one hand's 21 keypoints
WRIST = (WRIST_IN_HAND, JOINTS_PER_HAND + WRIST_IN_HAND)  # (20, 41): right, left wrist in the 42
ROOT_IDX = dict(zip(HANDS, WRIST))  # {"right": 20, "left": 41}
HAND_SLICES = {h: slice(i * JOINTS_PER_HAND, (i + 1) * JOINTS_PER_HAND) for i, h in enumerate(HANDS)}
FINGER_JOINTS = {f: tuple(range(4 * i, 4 * i + 4)) for i, f in enumerate(FINGERS)}  # tip..base in one hand
JOINT_NAMES = [  # e.g. right_thumb4 (tip) ... right_thumb1 (base), right_wrist
    name
    for hand in HANDS
    for name in [f"{hand}_{finger}{k}" for finger in FINGERS for k in (4, 3, 2, 1)] + [f"{hand}_wrist"]
]
JOINT_HAND = np.array([0] * JOINTS_PER_HAND + [1] * JOINTS_PER_HAND)  # (42,) hand of each keypoint


def _parents() -> list[int]:
    # a finger joint's parent is the next joint towards the base; a finger's base hangs from the wrist
    out = []
    for h in range(2):
        o = JOINTS_PER_HAND * h
        for f in range(5):
            for k in range(4):
                out.append(o + f * 4 + k + 1 if k < 3 else o + WRIST_IN_HAND)
        out.append(-1)
    return out


PARENTS = _parents()  # (42,) parent keypoint, -1 at the wrists
SKELETON = [(j, p) for j, p in enumerate(PARENTS) if p >= 0]  # 40 bones (child, parent), both hands
HAND_BONES = [(j, p) for j, p in SKELETON if j < JOINTS_PER_HAND]  # 20 bones of one hand (indices 0-20)
