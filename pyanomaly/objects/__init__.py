"""Objects of a frame: its foreground regions (:mod:`.foreground`), each scored on its own by
:class:`~pyanomaly.models.object_cue.ObjectCue`."""
from .foreground import METHODS, Foreground, build_foreground

__all__ = ["Foreground", "build_foreground", "METHODS"]
