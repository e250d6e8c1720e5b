"""The server <-> agent protocol as the server speaks it (docs/protocol.md,
src/proto/): its launch orders carry exactly the documented keys, and a
sync whose fields have the wrong type is refused with a sentence naming
the field, changing nothing."""
import json
import os
import re
import time
import urllib.error
import urllib.request

import pytest

from holdfast_harness import REPO, Cluster, write

SPEC = """
name: proto
pods:
  app:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: echo up > up && exec sleep 1000
        cpus: 0.1
        memory: 32
        ports:
          http: {port: 0, env-key: PORT_HTTP}
        volume: {path: data, type: ROOT, size: 10}
        readiness-check: {cmd: test -f up, interval: 1, timeout: 5}
"""


@pytest.fixture(scope="module")
def cl(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("proto")
    c = Cluster(tmp)
    c.start()
    try:
        c.deploy(write(tmp / "s.yml", SPEC))
        c.wait_plan("proto")
        yield c
    finally:
        c.stop()
        c.kill_tasks()


def sync(cl, body):
    """POST /v1/agent/sync as node-1 with its own credential."""
    with open(os.path.join(cl.agent_data, "node-token")) as f:
        token = f.read().strip()
    req = urllib.request.Request(
        cl.url + "/v1/agent/sync", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def doc_launch_order():
    text = open(os.path.join(REPO, "docs", "protocol.md")).read()
    block = text[text.index("### Launch order"):]
    m = re.search(r"```json\n(.*?)```", block, re.S)
    return json.loads(m.group(1))


def test_launch_orders_have_the_documented_keys(cl):
    st, body = sync(cl, {"node_id": "node-1", "wait": 0})
    assert st == 200, body
    assert len(body["tasks"]) == 1, body
    order = body["tasks"][0]
    assert set(order) == set(doc_launch_order()), sorted(set(order) ^ set(doc_launch_order()))
    assert order["task_id"] == cl.tasks("proto")["app-0-server"]["id"]
    assert order["ports"]["http"] == int(order["env"]["PORT_HTTP"])
    assert order["readiness_check"]["kind"] == "cmd"
    assert order["volumes"][0]["key"] == "proto/app-0/server-resource-set/data"


def test_a_sync_that_does_not_decode_changes_nothing(cl):
    task = cl.tasks("proto")["app-0-server"]
    forged = {"node_id": "node-1", "seq": 2 ** 50, "wait": 0,
              "tasks": [{"task_id": task["id"], "state": "exited", "exit_code": "1"}]}
    st, body = sync(cl, forged)
    assert st == 400, body
    assert body["message"] == "tasks[0].exit_code: must be an integer or null", body
    # Nothing was taken from it: the task is the same launch, running.
    time.sleep(1)
    now = cl.tasks("proto")["app-0-server"]
    assert now["id"] == task["id"] and now["status"] == "RUNNING", now


def test_a_brief_sync_gets_the_tasks_it_listed_by_id_alone(cl):
    """docs/protocol.md, `brief`: the orders of tasks the request listed are
    not sent again (a deploy would otherwise cost N orders per sync); a task
    the request did not list comes whole, and so does everything to a
    request that is not brief."""
    task = cl.tasks("proto")["app-0-server"]
    report = {"task_id": task["id"], "state": "running", "ready": True}
    if task.get("pid"):
        report["pid"] = task["pid"]
    # seq 1: older than the agent's reports, so it declares nothing lost.
    st, body = sync(cl, {"node_id": "node-1", "seq": 1, "wait": 0, "brief": True,
                         "tasks": [report]})
    assert st == 200, body
    assert body["tasks"] == [{"task_id": task["id"], "known": True}], body
    st, body = sync(cl, {"node_id": "node-1", "seq": 1, "wait": 0, "brief": True,
                         "tasks": []})
    assert st == 200, body
    assert body["tasks"][0]["task_id"] == task["id"] and "cmd" in body["tasks"][0], body
    st, body = sync(cl, {"node_id": "node-1", "seq": 1, "wait": 0, "tasks": [report]})
    assert st == 200, body
    assert "cmd" in body["tasks"][0] and "known" not in body["tasks"][0], body
    st, body = sync(cl, {"node_id": "node-1", "wait": 0, "brief": "yes"})
    assert st == 400 and body["message"] == "brief: must be true or false", body
    time.sleep(0.5)
    now = cl.tasks("proto")["app-0-server"]
    assert now["id"] == task["id"] and now["status"] == "RUNNING", now


def test_an_answer_leaves_out_the_set_the_agent_holds(cl):
    """docs/protocol.md, `held`: a brief sync that lists every task and
    holds the current generation's set gets `tasks_unchanged` and no tasks;
    holding another generation, or listing fewer tasks, gets them all."""
    task = cl.tasks("proto")["app-0-server"]
    st, body = sync(cl, {"node_id": "node-1", "seq": 1, "wait": 0, "brief": True,
                         "same": [task["id"]], "tasks": []})
    assert st == 200, body
    gen = body["generation"]
    st, body = sync(cl, {"node_id": "node-1", "seq": 1, "wait": 0, "brief": True, "held": True,
                         "generation": gen, "same": [task["id"]], "tasks": []})
    assert st == 200, body
    assert body.get("tasks_unchanged") is True and "tasks" not in body, body
    assert body["generation"] == gen, body
    st, body = sync(cl, {"node_id": "node-1", "seq": 1, "wait": 0, "brief": True, "held": True,
                         "generation": gen - 1, "same": [task["id"]], "tasks": []})
    assert st == 200, body
    assert "tasks_unchanged" not in body and body["tasks"] == [
        {"task_id": task["id"], "known": True}], body
    st, body = sync(cl, {"node_id": "node-1", "seq": 1, "wait": 0, "brief": True, "held": True,
                         "generation": gen, "tasks": []})
    assert st == 200, body
    assert "tasks_unchanged" not in body and "cmd" in body["tasks"][0], body
    st, body = sync(cl, {"node_id": "node-1", "wait": 0, "held": 1})
    assert st == 400 and body["message"] == "held: must be true or false", body


def test_unchanged_reports_go_as_ids_of_the_servers_epoch(cl):
    """docs/protocol.md, `same`: a task whose report the server acknowledged
    is listed by id with the answer's reports_epoch and counts as reported
    again; listed under another epoch (a restarted server), the answer asks
    for every report ("resend") and the task is not taken for lost.
    Last in this module: its seq is newer than the agent's."""
    task = cl.tasks("proto")["app-0-server"]
    st, body = sync(cl, {"node_id": "node-1", "seq": 1, "wait": 0, "brief": True})
    assert st == 200, body
    epoch = body.get("reports_epoch")
    assert isinstance(epoch, str) and len(epoch) == 32, body
    assert "resend" not in body, body
    # The agent's own syncs carried the task's report in full already.
    st, body = sync(cl, {"node_id": "node-1", "seq": 2 ** 50, "wait": 0, "brief": True,
                         "tasks": [], "same": [task["id"]], "reports_epoch": epoch})
    assert st == 200, body
    assert "resend" not in body, body
    assert body["tasks"] == [{"task_id": task["id"], "known": True}], body
    st, body = sync(cl, {"node_id": "node-1", "seq": 2 ** 50 + 1, "wait": 0, "brief": True,
                         "tasks": [], "same": [task["id"]], "reports_epoch": "0" * 32})
    assert st == 200, body
    assert body.get("resend") is True and body["reports_epoch"] == epoch, body
    st, body = sync(cl, {"node_id": "node-1", "wait": 0, "same": "x"})
    assert st == 400 and body["message"].startswith("same"), body
    time.sleep(1)
    now = cl.tasks("proto")["app-0-server"]
    assert now["id"] == task["id"] and now["status"] == "RUNNING", now
