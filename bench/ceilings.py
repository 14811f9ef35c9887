"""Ceilings of the parts, each in its own process: `python -m bench.ceilings kafka|postgres ARGS...`.

kafka: produce 200-byte messages to a fresh topic with the services' producer settings (acks=all,
idempotent, linger 5 ms), then consume them all from the start; prints JSON with both rates.
postgres: single-row INSERT transactions (autocommit) from as many connections as a service's pool.
argon2: hashes/s at identity's parameters.  smtp: mails/s to the sink, fresh and kept connections.
"""

import asyncio
import json
import os
import sys
import time

MESSAGE = os.urandom(100).hex().encode()  # 200 bytes


async def kafka(bootstrap: str, topic: str, partitions: int, seconds: float, limit: int) -> dict:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    await asyncio.sleep(2)  # the new partitions' leaders settle; the first sends would retry otherwise
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    sent, started = 0, time.perf_counter()
    try:
        while sent < limit and time.perf_counter() - started < seconds:
            futures = [await producer.send(topic, MESSAGE, key=str(sent + n).encode()) for n in range(1000)]
            await asyncio.gather(*futures)
            sent += len(futures)
    finally:
        await producer.stop()
    produce_seconds = time.perf_counter() - started
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    received, started = 0, time.perf_counter()
    try:
        await consumer.seek_to_beginning()
        deadline = started + max(30.0, seconds * 3)
        while received < sent and time.perf_counter() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            received += sum(len(b) for b in batches.values())
    finally:
        await consumer.stop()
    consume_seconds = time.perf_counter() - started
    per_message, per_batch = await _commits(bootstrap, topic, min(sent, 3000))
    return {"produce_msgs_per_s": sent / produce_seconds, "consume_msgs_per_s": received / consume_seconds,
            "messages": sent, "received": received, "partitions": partitions, "message_bytes": len(MESSAGE),
            "consume_commit_each_msgs_per_s": per_message, "consume_commit_per_batch_msgs_per_s": per_batch}


async def _commits(bootstrap: str, topic: str, count: int) -> tuple[float, float]:
    """A consumer group reading `count` messages, committing after each one (as FastStream's ack does for
    the services' inbox subscribers) and then once per fetched batch."""
    from aiokafka import AIOKafkaConsumer

    rates = []
    for each in (True, False):
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                    enable_auto_commit=False, group_id=f"ceiling-{each}-{os.getpid()}")
        await consumer.start()
        read, started = 0, 0.0
        try:
            deadline = time.perf_counter() + 60
            while read < count and time.perf_counter() < deadline:
                batches = await consumer.getmany(timeout_ms=500, max_records=500)
                started = started or time.perf_counter()  # from the first fetch: the group join is not the point
                for records in batches.values():
                    for _ in records:
                        read += 1
                        if each:
                            await consumer.commit()
                if not each and batches:
                    await consumer.commit()
        finally:
            await consumer.stop()
        rates.append(read / max(1e-6, time.perf_counter() - started))
    return rates[0], rates[1]


async def postgres(url: str, connections: int, seconds: float) -> dict:
    import asyncpg

    setup = await asyncpg.connect(url)
    await setup.execute("CREATE TABLE IF NOT EXISTS ceiling (id bigserial PRIMARY KEY, payload text NOT NULL)")
    await setup.close()
    count = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal count
        conn = await asyncpg.connect(url)
        try:
            while time.perf_counter() < deadline:
                await conn.execute("INSERT INTO ceiling (payload) VALUES ($1)", "x" * 200)
                count += 1
        finally:
            await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return {"insert_tx_per_s": count / (time.perf_counter() - started), "connections": connections}


def argon2(time_cost: int, memory_kib: int, parallelism: int, threads: int, seconds: float) -> dict:
    """argon2id hashes/s with identity's parameters, from as many threads as cores (the hash frees the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    from argon2 import PasswordHasher

    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
    deadline = time.perf_counter() + seconds

    def worker() -> int:
        n = 0
        while time.perf_counter() < deadline:
            hasher.hash("correct horse battery")
            n += 1
        return n

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        total = sum(pool.map(lambda _: worker(), range(threads)))
    return {"hashes_per_s": total / (time.perf_counter() - started), "threads": threads}


async def smtp(port: int, count: int, concurrency: int) -> dict:
    """Mails/s to the sink: a new connection per message (as the mailer sends) and one kept-open connection each."""
    from email.message import EmailMessage

    import aiosmtplib

    def message(n: int) -> EmailMessage:
        m = EmailMessage()
        m["From"], m["To"], m["Subject"] = "bench@assent.example", f"ceiling{n}@ceiling.test", "ceiling"
        m.set_content("x" * 800)
        return m

    async def per_message(n: int) -> None:
        await aiosmtplib.send(message(n), hostname="127.0.0.1", port=port, timeout=10)

    started = time.perf_counter()
    for first in range(0, count, concurrency):
        await asyncio.gather(*(per_message(n) for n in range(first, min(count, first + concurrency))))
    fresh = count / (time.perf_counter() - started)

    async def kept(lane: int) -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=10)
        await client.connect()
        for n in range(lane, count, concurrency):
            await client.send_message(message(n))
        await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(kept(lane) for lane in range(concurrency)))
    reused = count / (time.perf_counter() - started)
    return {"connection_per_mail_per_s": fresh, "kept_connection_per_s": reused, "concurrency": concurrency}


def main() -> int:
    what, args = sys.argv[1], sys.argv[2:]
    if what == "kafka":
        result = asyncio.run(kafka(args[0], args[1], int(args[2]), float(args[3]), int(args[4])))
    elif what == "postgres":
        result = asyncio.run(postgres(args[0], int(args[1]), float(args[2])))
    elif what == "argon2":
        result = argon2(*map(int, args[:4]), float(args[4]))
    else:
        result = asyncio.run(smtp(int(args[0]), int(args[1]), int(args[2])))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
