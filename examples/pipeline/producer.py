#!/usr/bin/env python3
"""The pipeline's producer: appends TOTAL messages to the stream at RATE a
second, numbered from the last one there (so a second run goes on from the
first's)."""
import os
import time

from common import STREAM, connect_redis, ensure_group

rate, total = float(os.environ["RATE"]), int(os.environ["TOTAL"])
r = connect_redis()
ensure_group(r)
last = r.xrevrange(STREAM, count=1)
start = int(last[0][1]["seq"]) + 1 if last else 1
t0 = time.monotonic()
for n in range(total):
    wait = t0 + n / rate - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    r.xadd(STREAM, {"seq": start + n, "payload": f"message {start + n}"})
print(f"produced {total} messages ({start} to {start + total - 1}) at {rate:g}/s "
      f"in {time.monotonic() - t0:.1f} s", flush=True)
