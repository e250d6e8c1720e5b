#!/usr/bin/env python3
"""A pipeline consumer: consumer $POD_NAME of the group, it stores every
message it reads in PostgreSQL and acknowledges it. It first finishes what
it had read before a restart; every 30 s it takes over messages a consumer
that died left pending. It stops reading when its drain asks (state/stop)
and says so (state/stopped)."""
import os
import time

from common import GROUP, STREAM, connect_pg, connect_redis, ensure_group, own_pending, store

me = os.environ["POD_NAME"]
work_ms = float(os.environ.get("WORK_MS", "0"))
r = connect_redis()
while True:
    try:
        ensure_group(r)
        break
    except Exception as e:  # redis starting
        print(f"redis: {e}", flush=True)
        time.sleep(0.5)
conn = connect_pg()
while True:
    batch = own_pending(r, me)
    if not batch:
        break
    store(r, conn, me, batch)
open("state/reading", "w").close()
print(f"{me}: reading {STREAM} in group {GROUP}", flush=True)
stored, last_claim = 0, time.monotonic()
while not os.path.exists("state/stop"):
    resp = r.xreadgroup(GROUP, me, {STREAM: ">"}, count=10, block=500)
    stored += store(r, conn, me, [(i, f) for _, entries in resp for i, f in entries], work_ms)
    if time.monotonic() - last_claim > 30:
        last_claim = time.monotonic()
        _, claimed, *_ = r.xautoclaim(STREAM, GROUP, me, min_idle_time=30000, count=100)
        stored += store(r, conn, me, [(i, f) for i, f in claimed if f])
print(f"{me}: stopped reading after {stored} messages", flush=True)
open("state/stopped", "w").close()
while True:
    time.sleep(3600)
