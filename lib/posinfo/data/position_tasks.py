"""Position-dependent twins of the dense tasks: the same generated scenes, labelled by where the
objects are.

The generated scenes (:mod:`posinfo.data.scenes`) carry no absolute-position cue, and in their
own dense tasks nothing rewards knowing where a pixel is: every object is salient, and a class
is told by its shape. The twins keep the images and change only the labels, so that a pixel's
label cannot be given without knowing where its object lies in the frame:

- ``"central"`` saliency: only the object whose centre is nearest the image centre is salient.
- ``"thirds"`` segmentation: an object's class is the horizontal third (left, middle, right) in
  which its centre lies, whatever its shape.

Both are computed from a scene's resolution-free description (object centres in ``[0, 1]``) and
its visible-object map (:meth:`~posinfo.data.scenes.SyntheticScenes.instance_mask`), so hidden
parts of an object are never labelled.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from posinfo.data.scenes import SceneObject, SyntheticScenes

TWINS: tuple[str, ...] = ("central", "thirds")
THIRDS = 3  # the thirds segmentation's object classes (labels 1 .. 3; 0 is the background)


def central_object(objects: list[SceneObject]) -> int:
    """The index of the object whose centre is nearest the image centre ``(0.5, 0.5)`` (the
    first of equals)."""
    if not objects:
        raise ValueError("a scene without objects has no central object")
    return int(np.argmin([np.hypot(o.x - 0.5, o.y - 0.5) for o in objects]))


def third_of(obj: SceneObject) -> int:
    """The horizontal third (0 left, 1 middle, 2 right) in which the object's centre lies."""
    return min(THIRDS - 1, int(obj.x * THIRDS))


def central_saliency(scenes: SyntheticScenes) -> Tensor:
    """``float32 [n, S, S]``: 1 where the most central object of each scene is visible, else 0."""
    out = torch.zeros(len(scenes), scenes.size, scenes.size)
    for i in range(len(scenes)):
        out[i] = (scenes.instance_mask(i) == central_object(scenes.objects(i)) + 1).float()
    return out


def thirds_classes(scenes: SyntheticScenes) -> Tensor:
    """``int64 [n, S, S]``: 0 on the background, ``1 + third_of(object)`` where an object is
    visible."""
    out = torch.zeros(len(scenes), scenes.size, scenes.size, dtype=torch.int64)
    for i in range(len(scenes)):
        lookup = torch.tensor([0] + [1 + third_of(o) for o in scenes.objects(i)])
        out[i] = lookup[scenes.instance_mask(i)]
    return out


def twin_targets(scenes: SyntheticScenes, twin: str) -> Tensor:
    """The labels of the ``twin`` task (one of ``TWINS``) for every scene: ``float32 [n, S, S]``
    saliency masks (``"central"``) or ``int64 [n, S, S]`` class maps (``"thirds"``)."""
    if twin not in TWINS:
        raise ValueError(f"unknown position-dependent task {twin!r}; choose from {list(TWINS)}")
    return central_saliency(scenes) if twin == "central" else thirds_classes(scenes)
