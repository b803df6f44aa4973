"""The log ring behind logs.tail: bounded, filtered, published on the loop."""

from __future__ import annotations

import asyncio
import logging
import threading

from firmware.service.logring import LogRecord, LogRing


def _logger(ring: LogRing, name: str = "ponte.test") -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers[:] = [ring]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger


def test_ring_is_bounded_and_keeps_the_newest() -> None:
    ring = LogRing(capacity=10)
    logger = _logger(ring)
    for i in range(25):
        logger.info("record %d", i)
    assert len(ring.records) == 10
    assert [r.message for r in ring.tail(3)] == ["record 22", "record 23", "record 24"]
    assert ring.tail(0) == []


def test_filter_by_level_and_text() -> None:
    ring = LogRing()
    logger = _logger(ring)
    logger.debug("noise")
    logger.warning("Line card slow")
    logger.error("disk full")
    assert [r.message for r in ring.tail(10, "WARNING")] == ["Line card slow", "disk full"]
    assert [r.message for r in ring.tail(10, "DEBUG", "line CARD")] == ["Line card slow"]


def test_bad_format_arguments_do_not_raise() -> None:
    ring = LogRing()
    logger = _logger(ring)
    logging.raiseExceptions = False
    try:
        logger.info("%d", "not a number")
    finally:
        logging.raiseExceptions = True
    assert ring.tail(10) == []


async def test_records_from_other_threads_are_published_on_the_loop() -> None:
    ring = LogRing()
    logger = _logger(ring)
    loop = asyncio.get_running_loop()
    got: list[tuple[LogRecord, bool]] = []
    done = asyncio.Event()

    def publish(record: LogRecord) -> None:
        got.append((record, threading.current_thread() is threading.main_thread()))
        if len(got) == 2:
            done.set()

    ring.attach(loop, publish)
    await asyncio.to_thread(logger.info, "from a thread")
    logger.info("from the loop")
    logging.getLogger("firmware.api.events").handlers[:] = []
    await asyncio.wait_for(done.wait(), 5)
    assert [(r.message, main) for r, main in got] == [
        ("from a thread", True),
        ("from the loop", True),
    ]
    ring.detach()
