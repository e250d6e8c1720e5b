#!/usr/bin/env python3
"""The decommission task of a consumer scaled in: it asks the consumer to
stop reading, waits until it has (or is gone), stores and acknowledges what
it had read and not acknowledged, then removes it from the group, which it
leaves with no pending message."""
import os
import time

from common import GROUP, STREAM, connect_pg, connect_redis, own_pending, store

me = os.environ["POD_NAME"]
open("state/stop", "w").close()
deadline = time.monotonic() + 60
while not os.path.exists("state/stopped") and time.monotonic() < deadline:
    time.sleep(0.1)
r = connect_redis()
conn = connect_pg()
handed = 0
while True:
    batch = own_pending(r, me)
    if not batch:
        break
    handed += store(r, conn, me, batch)
left = r.xgroup_delconsumer(STREAM, GROUP, me)
print(f"{me}: drained ({handed} pending stored; {left} left at removal)", flush=True)
if left:
    raise SystemExit(f"{me}: {left} messages were still pending")
