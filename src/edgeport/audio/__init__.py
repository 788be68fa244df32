"""Audio data: read, resample, chunk, spectrograms, salient chunks, augmentation, synthetic data.

Numpy (+ soundfile/soxr/librosa) only: these modules run in data-loader worker processes, which must
never import TensorFlow.
"""
