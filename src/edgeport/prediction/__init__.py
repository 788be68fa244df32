"""``edgeport predict``: run an audio or geo artifact on a user's recordings or locations.

``audio``: recordings -> detections (evaluate's chunking and scoring path); ``geo``: (lat, lon, week) ->
species lists; ``tables``: per-recording CSV, Raven selection tables, the combined CSV.
"""
