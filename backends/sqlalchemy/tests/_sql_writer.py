"""A writer process for the reliability tests.

    python _sql_writer.py URL RUN_ID COUNT TAG ACK_FILE

Appends COUNT ``TextDelta`` events tagged ``TAG:i`` to RUN_ID and, after each
append returns, writes ``seq event_id`` to ACK_FILE and flushes it, so a parent
that kills this process knows every append it saw acknowledged.
"""

from __future__ import annotations

import asyncio
import sys

import eventstore
from eventstore import RunId, TextDelta


async def main(url: str, run: str, count: int, tag: str, ack_path: str) -> None:
    run_id = RunId.parse(run)
    # A plain file flushed per line: the parent reads it after killing us.
    with open(ack_path, "a", encoding="utf-8") as acks:  # noqa: ASYNC230
        async with eventstore.open_store(url) as store:
            for index in range(count):
                envelope = await store.append(TextDelta(run_id=run_id, delta=f"{tag}:{index}"))
                acks.write(f"{envelope.seq} {envelope.event_id}\n")
                acks.flush()


if __name__ == "__main__":
    url, run, count, tag, ack_path = sys.argv[1:6]
    asyncio.run(main(url, run, int(count), tag, ack_path))
