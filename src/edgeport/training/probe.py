"""Linear probing: a frozen pretrained backbone with a new head for a new class set."""

from __future__ import annotations

from edgeport.errors import SourceError
from edgeport.families.audio.model_config import (
    EMBEDDING_LAYER,
    LOGITS_LAYER,
    SIGMOID_LAYER,
)


def build_probe_model(base, num_classes: int, *, dropout: float = 0.0):
    """New model: ``base`` up to its pooled embedding (every layer frozen) -> dropout -> logits -> sigmoid."""
    import keras
    from keras import layers

    try:
        feat = base.get_layer(EMBEDDING_LAYER).output
    except ValueError:
        raise SourceError(f"The pretrained model has no '{EMBEDDING_LAYER}' layer: linear probing needs an "
                          "edgeport DS-CNN") from None
    for layer in base.layers:
        layer.trainable = False
    x = layers.Dropout(dropout, name="probe_dropout")(feat)
    logits = layers.Dense(num_classes, name=LOGITS_LAYER, dtype="float32")(x)
    out = layers.Activation("sigmoid", name=SIGMOID_LAYER, dtype="float32")(logits)
    return keras.Model(base.inputs, out, name=f"{base.name}_probe")
