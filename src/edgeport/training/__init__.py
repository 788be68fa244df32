"""Training the audio DS-CNN: config, data pipeline, losses, schedules, trainer, QAT, linear probe, demo."""
