"""Control and log messages between the supervisor and its workers: faster-fifo queues, msgspec-encoded.

Never on the hot path: workers read their control queue and write logs from Python, between slices of their
jitted loops. Two directions:

* up (one queue shared by every worker -> the supervisor): ``LogLine`` (every worker's logging goes here, the
  supervisor prints it) and ``Event`` (things the supervisor acts on or reports);
* down (one queue per worker): ``ReloadRisk`` (new risk limits, applied without a restart).

A full queue never blocks a worker: the message is dropped and counted (``QueueLogHandler.dropped``). A worker
killed while inside a put can leave the queue's lock held; faster-fifo's mutex is process-shared, and the
supervisor creates fresh queues only at start, so such a loss would show as missing log lines, never as a stuck
worker (puts time out).
"""

from __future__ import annotations

import logging
import queue

import faster_fifo
import msgspec

from hft.risk.config import RiskConfig

QUEUE_BYTES = 1 << 20
PUT_TIMEOUT_S = 0.01


class LogLine(msgspec.Struct, tag=True, frozen=True):
    process: str
    pid: int
    level: int
    logger: str
    message: str
    created: float


class Event(msgspec.Struct, tag=True, frozen=True):
    process: str
    kind: str  # e.g. "risk-reloaded"
    detail: str = ""


class ReloadRisk(msgspec.Struct, tag=True, frozen=True):
    risk: RiskConfig


Message = LogLine | Event | ReloadRisk
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Message)


def new_queue() -> faster_fifo.Queue:
    return faster_fifo.Queue(max_size_bytes=QUEUE_BYTES)


def send(channel: faster_fifo.Queue, message: Message) -> bool:
    """Put one message; False (dropped) if the queue stays full for PUT_TIMEOUT_S."""
    try:
        channel.put(_encoder.encode(message), timeout=PUT_TIMEOUT_S)
        return True
    except queue.Full:
        return False


def receive(channel: faster_fifo.Queue, max_messages: int = 1000, timeout: float = 0.0) -> list[Message]:
    """Take what is there (waiting up to ``timeout`` for the first message); undecodable entries are skipped."""
    try:
        if timeout > 0:
            raw = channel.get_many(block=True, timeout=timeout, max_messages_to_get=max_messages)
        else:
            raw = channel.get_many(block=False, max_messages_to_get=max_messages)
    except queue.Empty:
        return []
    messages = []
    for item in raw:
        try:
            messages.append(_decoder.decode(item))
        except msgspec.DecodeError:
            continue
    return messages


class QueueLogHandler(logging.Handler):
    """A worker's logging handler: each record becomes a ``LogLine`` on the up queue."""

    def __init__(self, channel: faster_fifo.Queue, process: str, pid: int) -> None:
        super().__init__()
        self.channel = channel
        self.process = process
        self.pid = pid
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            line = LogLine(process=self.process, pid=self.pid, level=record.levelno, logger=record.name,
                           message=message, created=record.created)
        except Exception:
            self.handleError(record)
            return
        if not send(self.channel, line):
            self.dropped += 1


def replay_log_line(line: LogLine) -> None:
    """Supervisor side: hand a worker's line to logging as if the worker had logged it here."""
    record = logging.LogRecord(line.logger, line.level, "", 0, line.message, None, None)
    record.created = line.created
    record.msecs = (line.created - int(line.created)) * 1000
    record.process = line.pid
    record.worker = line.process
    logging.getLogger(line.logger).handle(record)
