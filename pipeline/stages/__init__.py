"""The stage registry: the one place where enhancement stages register.

Order matters and is the run order: frame stages run before detection (so
that faces in the dark can be found at all), crop stages run on each face
crop after it.  Default crop order is deblur -> super-resolution: motion blur
is removed at the resolution it happened at, before upscaling would smear
it over more pixels.

Each entry points at a stage module's pure function.  A stage that is not
built yet is still listed (``run=None``) so that its toggle is visible in the
UI, disabled, with the reason.
"""

from __future__ import annotations

from ..core import StageSpec
from .lowlight import enhance_low_light, is_dark
from .deblur import deblur as deblur_crop, needs_deblur, unavailable as deblur_unavailable
from .superres import enhance_crop, needs_super_resolution, unavailable as superres_unavailable


def _not_built(issue: int) -> "callable":
    return lambda: f"not built yet (tracked in issue #{issue})"


STAGES: tuple[StageSpec, ...] = (
    StageSpec(
        name="lowlight",
        label="Low-light enhancement (LIME)",
        target="frame",
        run=enhance_low_light,
        auto_test=is_dark,
        description="Brightens dark frames before detection so faces in the dark can be found.",
    ),
    StageSpec(
        name="deblur",
        label="Motion deblur (DeblurGAN-v2)",
        target="crop",
        run=deblur_crop,
        auto_test=needs_deblur,  # fires when the variance of the Laplacian is low
        unavailable=deblur_unavailable,
        description="Removes motion blur from each face crop (FPN-MobileNet generator trained here).",
    ),
    StageSpec(
        name="superres",
        label="Super-resolution (SRCNN)",
        target="crop",
        run=enhance_crop,
        auto_test=needs_super_resolution,  # fires on crops under 112 px, x2..x4 to reach ~112 px
        unavailable=superres_unavailable,
        description="Upscales small face crops x2-x4 with SRCNN (luma), leaving large crops alone.",
    ),
)

__all__ = ["STAGES"]
