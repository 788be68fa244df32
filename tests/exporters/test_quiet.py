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
