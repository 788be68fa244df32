"""Converter chatter is silenced during conversion; errors and edgeport's own messages are not."""

from __future__ import annotations

import logging

from edgeport.exporters._torch_compat import quiet


def test_quiet_drops_root_logger_warnings_but_keeps_errors_and_named_loggers(caplog):
    caplog.set_level(logging.INFO)
    with quiet():
        logging.warning("Please consider to run pre-processing before quantization.")  # ORT quantizer style
        logging.error("a real error")
        logging.getLogger("edgeport.exporters.onnx").warning("edgeport's own warning")
    logging.warning("after quiet()")
    msgs = [r.getMessage() for r in caplog.records]
    assert "Please consider to run pre-processing before quantization." not in msgs
    assert "a real error" in msgs
    assert "edgeport's own warning" in msgs
    assert "after quiet()" in msgs  # the filter is removed on exit
    assert not logging.getLogger().filters


def test_native_output_is_dropped_on_success_and_replayed_on_error(capfd, caplog):
    import os

    import pytest

    from edgeport.exporters._torch_compat import native_output_captured

    with native_output_captured():
        os.write(2, b"fully_quantize: 0, inference_type: 6\n")  # what the TFLite converter prints from C++
        os.write(1, b"native stdout line\n")
    os.write(2, b"after the block\n")
    out, err = capfd.readouterr()
    assert "fully_quantize" not in err and "native stdout line" not in out
    assert "after the block" in err  # descriptors restored

    with pytest.raises(RuntimeError, match="converter crashed"), native_output_captured():
        os.write(2, b"E tflite/converter.cc:42 unsupported op FlexErf\n")
        raise RuntimeError("converter crashed")
    assert any("unsupported op FlexErf" in r.getMessage() for r in caplog.records)
