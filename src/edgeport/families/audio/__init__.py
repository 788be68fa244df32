"""Audio reference family: the DS-CNN classifier of seed 004 with its frontends and magnitude scalings.

Light to import (no TensorFlow): Keras parts live in ``layers``, ``dscnn`` and ``loading``.
"""

from edgeport.families.audio.contract import model_input_from_audio
from edgeport.families.audio.frontends import (
    FRONTENDS,
    MAG_SCALES,
    resolve_frontend,
)
from edgeport.families.audio.model_config import (
    AudioModelConfig,
    read_model_config,
    write_model_config,
)

__all__ = [
    "FRONTENDS", "MAG_SCALES", "AudioModelConfig", "model_input_from_audio", "read_model_config",
    "resolve_frontend", "write_model_config",
]
