"""Decoded-audio cache: hits, invalidation, other-format folders, and outputs identical to decoding."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest

from edgeport.audio.cache import FORMAT, CacheSpec, DecodedAudioCache, cache_size
from edgeport.audio.io import AudioReadError, load, write_wav

SR_FILE, SR = 22050, 16000


def _clip(path, seed, seconds=1.3):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR_FILE)) / SR_FILE
    x = 0.3 * np.sin(2 * np.pi * (600 + 400 * seed) * t) + 0.05 * rng.standard_normal(t.size)
    write_wav(path, x.astype(np.float32), SR_FILE)
    return path


@pytest.fixture
def clips(tmp_path):
    return [_clip(tmp_path / "audio" / f"c{i}.wav", i) for i in range(3)]


def test_memory_and_disk_hits_return_the_decoded_signal(tmp_path, clips):
    ref = [load(p, SR, max_duration=60.0) for p in clips]
    c = DecodedAudioCache(CacheSpec(str(tmp_path / "cache"), memory_mb=64))
    first = [c.load(p, SR, max_duration=60.0) for p in clips]
    again = [c.load(p, SR, max_duration=60.0) for p in clips]
    assert c.stats.misses == 3 and c.stats.memory_hits == 3 and c.stats.disk_writes == 3
    for r, a, b in zip(ref, first, again, strict=True):
        np.testing.assert_array_equal(a, r)
        np.testing.assert_array_equal(b, r)
    assert cache_size(tmp_path / "cache") == (3, pytest.approx(sum(r.nbytes for r in ref), rel=0.01))
    # a new process (fresh memory table) reads the folder
    d = DecodedAudioCache(CacheSpec(str(tmp_path / "cache"), memory_mb=64))
    from_disk = [d.load(p, SR, max_duration=60.0) for p in clips]
    assert d.stats.disk_hits == 3 and d.stats.misses == 0
    for r, a in zip(ref, from_disk, strict=True):
        np.testing.assert_array_equal(a, r)
    # another sample rate or max_duration is another entry
    np.testing.assert_array_equal(d.load(clips[0], 8000, max_duration=60.0), load(clips[0], 8000, max_duration=60.0))
    np.testing.assert_array_equal(d.load(clips[0], SR, max_duration=0.5), load(clips[0], SR, max_duration=0.5))
    assert d.stats.misses == 2


def test_memory_budget_evicts_least_recent(clips):
    one = load(clips[0], SR, max_duration=60.0).nbytes
    c = DecodedAudioCache(CacheSpec(None, memory_mb=1.5 * one / 2**20))
    for p in clips:
        c.load(p, SR)
    c.load(clips[2], SR)   # still held
    c.load(clips[0], SR)   # evicted: decoded again
    assert c.stats.memory_hits == 1 and c.stats.misses == 4
    assert c._mem_bytes <= c.memory_budget


def test_changed_source_file_is_decoded_again(tmp_path, clips):
    c = DecodedAudioCache(CacheSpec(str(tmp_path / "cache"), memory_mb=64))
    old = c.load(clips[0], SR).copy()
    _clip(clips[0], 7, seconds=0.9)     # new content and size
    st = os.stat(clips[0])
    os.utime(clips[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    new = c.load(clips[0], SR)
    assert c.stats.misses == 2
    np.testing.assert_array_equal(new, load(clips[0], SR))
    assert new.size != old.size


def test_corrupt_entry_is_removed_and_decoded_again(tmp_path, clips, caplog):
    spec = CacheSpec(str(tmp_path / "cache"), memory_mb=0)
    c = DecodedAudioCache(spec)
    ref = c.load(clips[0], SR).copy()
    entry = c.entry_path(c.key(clips[0], SR, max_duration=None, normalize=True))
    raw = bytearray(entry.read_bytes())
    raw[-5] ^= 0xFF                         # one flipped byte in the samples
    entry.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING, logger="edgeport.audio.cache"):
        x = c.load(clips[0], SR)
    assert "corrupt" in caplog.text and c.stats.invalidated == 1 and c.stats.misses == 2
    np.testing.assert_array_equal(x, ref)
    entry.write_bytes(entry.read_bytes()[:100])  # truncated
    np.testing.assert_array_equal(c.load(clips[0], SR), ref)
    assert c.stats.invalidated == 2
    assert DecodedAudioCache(spec).load(clips[0], SR).size == ref.size  # the rewritten entry is good


def test_other_format_folder_is_ignored_with_a_warning(tmp_path, clips, caplog):
    root = tmp_path / "cache"
    (root / "decoded-v0" / "ab").mkdir(parents=True)
    (root / "decoded-v0" / "ab" / "junk.pcm").write_bytes(b"old")
    with caplog.at_level(logging.WARNING, logger="edgeport.audio.cache"):
        c = DecodedAudioCache(CacheSpec(str(root)))
    assert "decoded-v0" in caplog.text and "another format" in caplog.text
    assert c.folder == root / f"decoded-v{FORMAT}"
    c.load(clips[0], SR)
    assert cache_size(root)[0] == 1
    # a current-named folder whose stamp says another format: not read, not written
    stamp = c.folder / "edgeport-decoded-audio.json"
    stamp.write_text(json.dumps({"format": FORMAT + 1}))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="edgeport.audio.cache"):
        d = DecodedAudioCache(CacheSpec(str(root)))
    assert d.folder is None and "stamp says format" in caplog.text
    d.load(clips[1], SR)
    assert d.stats.misses == 1 and cache_size(root)[0] == 1


def test_unreadable_file_raises_the_decode_error(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    c = DecodedAudioCache(CacheSpec(str(tmp_path / "cache")))
    with pytest.raises(AudioReadError):
        c.load(bad, SR)
    with pytest.raises(AudioReadError):
        c.load(tmp_path / "missing.wav", SR)


def test_training_chunks_identical_with_and_without_cache(tmp_path, clips):
    """Same seeds -> the same batches, whether the audio comes from decoding, memory or the folder."""
    from edgeport.families.audio.model_config import AudioModelConfig
    from edgeport.training.data import ChunkStream, load_fixed

    cfg = AudioModelConfig(sample_rate=SR, chunk_duration=0.5, spec_width=32, fft_length=256, num_mels=16,
                           num_classes=3, class_names=("a", "b", "c"))
    cj = json.dumps(cfg.to_dict())
    files = [str(p) for p in clips]
    labels = np.eye(3, dtype=np.float32)

    def batches(cache):
        s = ChunkStream(files, labels, cj, seed=5, max_chunks_per_file=2, reservoir_size=4, cache=cache)
        return [b for b in s.batches(3, 6)]

    plain = batches(None)
    spec = CacheSpec(str(tmp_path / "cache"), memory_mb=64)
    cold = batches(spec)                  # decodes, writes the folder
    warm = batches(spec)                  # memory hits
    disk = batches(CacheSpec(str(tmp_path / "cache"), memory_mb=0))  # folder hits only
    for other in (cold, warm, disk):
        for (xa, ya), (xb, yb) in zip(plain, other, strict=True):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
    vx, vy, _ = load_fixed(files, labels, cj, chunks_per_file=2)
    cx, cy, _ = load_fixed(files, labels, cj, chunks_per_file=2, cache=spec)
    np.testing.assert_array_equal(vx, cx)
    np.testing.assert_array_equal(vy, cy)


def test_prefetched_keeps_order_and_raises_errors():
    from edgeport.training.data import prefetched

    assert list(prefetched(iter(range(50)), depth=3)) == list(range(50))

    def broken():
        yield 1
        raise ValueError("bad batch")

    got = []
    with pytest.raises(ValueError, match="bad batch"):
        got.extend(prefetched(broken()))
    assert got == [1]
    # a consumer that stops early does not hang
    for v in prefetched(iter(range(1000)), depth=2):
        if v == 3:
            break


@pytest.mark.parametrize("frontend,scale", [("hybrid", "pwl"), ("librosa", "pwl"), ("raw", "pwl"), ("mfcc", "none")])
def test_worker_chunks_are_the_salient_chunks_features_for_every_frontend(tmp_path, clips, frontend, scale):
    """A worker's output, with the cache (memory, folder) or without, is exactly the file's seeded salient
    chunks through ``contract.features``, including a file shorter than one chunk (padded)."""
    from edgeport.audio.chunking import salient_chunks
    from edgeport.families.audio.contract import features, load_audio
    from edgeport.families.audio.model_config import AudioModelConfig
    from edgeport.training.data import load_file_chunks

    cfg = AudioModelConfig(sample_rate=SR, chunk_duration=0.5, spec_width=32, fft_length=256, num_mels=16,
                           n_mfcc=16, audio_frontend=frontend, mag_scale=scale, num_classes=3,
                           class_names=("a", "b", "c"))
    cj = json.dumps(cfg.to_dict())
    short = _clip(tmp_path / "audio" / "short.wav", 9, seconds=0.3)
    spec = CacheSpec(str(tmp_path / "cache"), memory_mb=64)
    for path in [*clips, short]:
        x = load_audio(path, cfg, max_duration=60.0)
        want = np.stack([features(c, cfg) for c in
                         salient_chunks(x, cfg.chunk_samples, 2, rng=np.random.default_rng(11))])
        assert want.shape[0] == (1 if path == short else 2)
        for cache in (None, spec, spec, CacheSpec(str(tmp_path / "cache"), memory_mb=0)):
            got, err = load_file_chunks((str(path), cj, 2, 11, 60.0, cache))
            assert err is None and got.dtype == np.float32
            np.testing.assert_array_equal(got, want)
