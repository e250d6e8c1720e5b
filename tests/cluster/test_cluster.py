"""holdfast on several hosts (network namespaces on this machine): placement
constraints across agents, and node loss (a host cut off, a host killed).

One server with SQLite; three or four agent hosts; the CLI and the API are
used from a separate "ops" host. Run as root:

    /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/cluster
"""
import base64
import json
import os
import time

import pytest

from netns import holds_for, wait_for, write

NODE_TIMEOUT = 3  # seconds without a sync before the server calls a node unreachable


def start_cluster(hf, net, zones):
    """A server on host "srv" and one agent per zone, on hosts a1, a2, ...
    (node id = host name = hostname). Returns the agents."""
    hf.start_server(net.add_host("srv"))
    agents = []
    for i, zone in enumerate(zones, 1):
        agents.append(hf.start_agent(net.add_host(f"a{i}"), attributes={"zone": zone, "rack": f"r{i}"}))
    return agents


def spec(tmp, name, count, placement, extra_pod="", extra_top="", tasks=None):
    tasks = tasks or """
      server:
        goal: RUNNING
        cmd: hostname > data/hostname && echo "$TASK_NAME $(date +%s%N)" >> data/starts && exec sleep 100000
        cpus: 0.1
        memory: 32
        volume: {path: data, type: ROOT, size: 10}
"""
    return write(os.path.join(tmp, f"{name}.yml"), f"""
name: {name}
{extra_top}
pods:
  app:
    count: {count}
    placement: '{placement}'
{extra_pod}
    tasks:
{tasks}
""")


def nodes_of(hf, svc):
    return {p["name"]: p["node"] for p in hf.pods(svc)}


def assert_one_copy_each(hf, svc):
    """Every task of the service runs exactly once, on its instance's node,
    with the id the server has."""
    for pod in hf.pods(svc):
        for t in pod["tasks"]:
            if t["status"] != "RUNNING":
                continue
            copies = hf.task_copies(svc, t["name"])
            assert len(copies) == 1, f"{t['name']} runs {len(copies)} times: {copies}"
            host, sandbox = copies[0]
            assert host == pod["node"], f"{t['name']} runs on {host}, the server says {pod['node']}"
            assert f"/{t['id']}/" in sandbox + "/", f"{t['name']} runs as {sandbox}, not {t['id']}"


def read(path):
    with open(path) as f:
        return f.read()


def env_file(path):
    return dict(line.split("=", 1) for line in read(path).splitlines() if "=" in line)


# ---------------------------------------------------------------------
# placement


def test_unique_hostname_lands_one_instance_per_host(hf, net, tmp_path):
    agents = start_cluster(hf, net, "abc")
    hf.deploy(spec(tmp_path, "uniq", 3, '[["hostname", "UNIQUE"]]'))
    placed = nodes_of(hf, "uniq")
    assert sorted(placed.values()) == ["a1", "a2", "a3"], placed
    for inst, node in placed.items():
        # The task really runs on that host (and sees its hostname).
        files = hf.agents[node].find_in_volumes("uniq", inst, "hostname")
        assert len(files) == 1, files
        assert read(files[0]).strip() == node
    assert_one_copy_each(hf, "uniq")
    assert all(t["status"] == "RUNNING" for t in hf.tasks("uniq").values())
    assert {a.node_id for a in agents} == set(placed.values())


def test_group_by_zone_spreads_across_zones(hf, net, tmp_path):
    start_cluster(hf, net, "aabc")  # a1, a2 in zone a; a3 in b; a4 in c
    zone = {"a1": "a", "a2": "a", "a3": "b", "a4": "c"}
    hf.deploy(spec(tmp_path, "grp", 6, '[["zone", "GROUP_BY"]]'))
    placed = nodes_of(hf, "grp")
    per_zone = {}
    for node in placed.values():
        per_zone[zone[node]] = per_zone.get(zone[node], 0) + 1
    assert per_zone == {"a": 2, "b": 2, "c": 2}, placed
    assert_one_copy_each(hf, "grp")


def test_unplaceable_pod_reports_the_blocking_constraint(hf, net, tmp_path):
    start_cluster(hf, net, "abc")
    hf.deploy(spec(tmp_path, "four", 4, '[["hostname", "UNIQUE"]]'), wait=False)

    def blocked():
        steps = hf.steps("four")
        done = all(steps[f"app-{i}:[server]"]["status"] == "COMPLETE" for i in range(3))
        return done and steps["app-3:[server]"]["message"] and steps["app-3:[server]"]
    step = wait_for(blocked, 60, what="app-0..2 placed and app-3 blocked with a message")
    msg = step["message"]
    assert step["status"] != "COMPLETE", step
    assert "UNIQUE" in msg and "hostname" in msg, msg
    for node in ("a1", "a2", "a3"):  # it says which node is ruled out
        assert node in msg, f"{node} not named in: {msg}"
    # It stays so, and nothing is placed twice on a host.
    holds_for(lambda: hf.steps("four")["app-3:[server]"]["status"] != "COMPLETE", 3,
              what="app-3 unplaced")
    placed = nodes_of(hf, "four")
    assert sorted(n for n in placed.values() if n) == ["a1", "a2", "a3"], placed
    assert not placed.get("app-3"), placed
    # The CLI shows the same reason.
    out = hf.cli("--json", "-s", "four", "plan", "show", "deploy").stdout
    assert msg in out.replace("\\u0027", "'").replace('\\"', '"'), out
    assert_one_copy_each(hf, "four")


# ---------------------------------------------------------------------
# node loss


@pytest.mark.parametrize("mode", ["down", "drop"])
def test_cut_agent_host_waits_then_comes_back_intact(hf, net, tmp_path, mode):
    start_cluster(hf, net, "abc")
    hf.deploy(spec(tmp_path, "cut", 3, '[["hostname", "UNIQUE"]]'))
    victim = "a2"
    inst = next(i for i, n in nodes_of(hf, "cut").items() if n == victim)
    task = f"{inst}-server"
    before = hf.tasks("cut")
    agent = hf.agents[victim]
    starts = agent.find_in_volumes("cut", inst, "starts")
    assert len(starts) == 1 and len(read(starts[0]).splitlines()) == 1
    marker = os.path.join(os.path.dirname(starts[0]), "written-before-the-cut")
    write(marker, "still here\n")

    net[victim].cut(mode)
    t0 = time.time()
    wait_for(lambda: hf.pod("cut", inst)["node_reachable"] is False, NODE_TIMEOUT + 30,
             what=f"{inst} shown on an unreachable node")
    assert not hf.node(victim)["connected"]
    print(f"unreachable after {time.time() - t0:.1f}s")

    def waiting():
        pod = hf.pod("cut", inst)
        tasks = hf.tasks("cut")
        return (pod["node"] == victim and pod["node_reachable"] is False
                and tasks[task]["id"] == before[task]["id"]
                and [h for h, _ in hf.task_copies("cut", task)] == [victim]
                and all(tasks[n]["id"] == before[n]["id"] for n in before))
    # Nothing relaunched elsewhere while the node is away (and the task,
    # which nobody killed, keeps running on the cut-off host).
    holds_for(waiting, 3 * NODE_TIMEOUT, what=f"{inst} waiting on {victim}")

    net[victim].heal()
    wait_for(lambda: hf.pod("cut", inst)["node_reachable"] is True, 60,
             what=f"{victim} reachable again")
    wait_for(lambda: hf.tasks("cut")[task]["status"] == "RUNNING", 30, what=f"{task} RUNNING")
    after = hf.tasks("cut")
    assert {n: t["id"] for n, t in after.items()} == {n: t["id"] for n, t in before.items()}
    assert read(marker) == "still here\n"
    assert len(read(starts[0]).splitlines()) == 1, "the task was restarted: " + read(starts[0])
    assert nodes_of(hf, "cut")[inst] == victim
    # Still no duplicate a little later (an agent back from a partition
    # must not start anything twice).
    holds_for(lambda: [h for h, _ in hf.task_copies("cut", task)] == [victim], 2,
              what=f"one copy of {task}")
    assert_one_copy_each(hf, "cut")
    assert hf.plan("cut")["status"] == "COMPLETE"


def test_killed_host_plus_pod_replace_relaunches_elsewhere_with_replace_env(hf, net, tmp_path):
    start_cluster(hf, net, "abc")
    tasks = """
      bootstrap:
        goal: ONCE
        cmd: env > data/bootstrap.env && date +%s%N > data/bootstrap.at
        resource-set: rs
      server:
        goal: RUNNING
        cmd: env > data/server.env && date +%s%N > data/server.at && exec sleep 100000
        resource-set: rs
"""
    pod_extra = """
    resource-sets:
      rs:
        cpus: 0.2
        memory: 64
        volume: {path: data, type: ROOT, size: 10}
    replace:
      tasks: [bootstrap]"""
    path = spec(tmp_path, "rep", 2, '[["hostname", "UNIQUE"]]', extra_pod=pod_extra, tasks=tasks)
    hf.deploy(path)
    placed = nodes_of(hf, "rep")
    free = ({"a1", "a2", "a3"} - set(placed.values())).pop()
    inst = "app-0"
    victim = placed[inst]
    other = "app-1"
    other_id = hf.tasks("rep")[f"{other}-server"]["id"]
    # A first deploy does not run the replace tasks.
    assert hf.agents[victim].find_in_volumes("rep", inst, "bootstrap.env") == []
    first_env = env_file(hf.agents[victim].find_in_volumes("rep", inst, "server.env")[0])
    assert "REPLACED_NODE" not in first_env

    net[victim].kill()  # every process: agent, shims, tasks
    net[victim].cut()   # and it does not come back
    assert net[victim].pids() == []
    wait_for(lambda: hf.pod("rep", inst)["node_reachable"] is False, NODE_TIMEOUT + 30,
             what=f"{victim} unreachable")
    # Without a replacement-failure-policy nothing moves by itself.
    holds_for(lambda: nodes_of(hf, "rep")[inst] == victim and not hf.task_copies("rep", f"{inst}-server"),
              NODE_TIMEOUT, what=f"{inst} waiting for its node")

    out = hf.cli("-s", "rep", "pod", "replace", inst, "--yes").stdout
    print(out)
    wait_for(lambda: nodes_of(hf, "rep")[inst] == free, 60, what=f"{inst} placed on {free}")
    wait_for(lambda: hf.tasks("rep")[f"{inst}-server"]["status"] == "RUNNING", 60,
             what=f"{inst}-server RUNNING on {free}")
    hf.wait_plan("rep")

    new = hf.agents[free]
    boot = new.find_in_volumes("rep", inst, "bootstrap.env")
    srv = new.find_in_volumes("rep", inst, "server.env")
    assert len(boot) == 1 and len(srv) == 1, (boot, srv)
    victim_ip = net[victim].ip
    for f in (boot[0], srv[0]):
        env = env_file(f)
        assert env.get("REPLACED_NODE") == victim, (f, env.get("REPLACED_NODE"))
        assert env.get("REPLACED_ADDRESS") == victim_ip, (f, env.get("REPLACED_ADDRESS"))
        assert env.get("REPLACED_INSTANCE") == inst, (f, env.get("REPLACED_INSTANCE"))
    # The hook ran first, to completion.
    at = lambda name: int(read(new.find_in_volumes("rep", inst, name)[0]))
    assert at("bootstrap.at") <= at("server.at")
    assert hf.tasks("rep")[f"{inst}-bootstrap"]["status"] in ("FINISHED", "COMPLETE", "FINISHED_OK"), \
        hf.tasks("rep")[f"{inst}-bootstrap"]
    # The other instance was left alone; one copy of everything.
    assert hf.tasks("rep")[f"{other}-server"]["id"] == other_id
    assert [h for h, _ in hf.task_copies("rep", f"{inst}-server")] == [free]
    assert_one_copy_each(hf, "rep")


def test_replaced_while_cut_off_old_copy_is_stopped_when_the_host_returns(hf, net, tmp_path):
    """The split-brain case: an instance is replaced while its host is only
    cut off (its task still runs there); when the host comes back its agent
    must stop the old copy, so that one copy runs in the end."""
    start_cluster(hf, net, "abc")
    hf.deploy(spec(tmp_path, "split", 2, '[["hostname", "UNIQUE"]]'))
    placed = nodes_of(hf, "split")
    inst = "app-0"
    victim = placed[inst]
    free = ({"a1", "a2", "a3"} - set(placed.values())).pop()
    task = f"{inst}-server"
    old_id = hf.tasks("split")[task]["id"]

    net[victim].cut()
    wait_for(lambda: hf.pod("split", inst)["node_reachable"] is False, NODE_TIMEOUT + 30,
             what=f"{victim} unreachable")
    hf.cli("-s", "split", "pod", "replace", inst, "--yes")
    wait_for(lambda: hf.tasks("split")[task]["status"] == "RUNNING"
             and nodes_of(hf, "split")[inst] == free, 60, what=f"{task} RUNNING on {free}")
    new_id = hf.tasks("split")[task]["id"]
    assert new_id != old_id
    # While cut off, the old copy still runs on the victim (nobody could
    # stop it); the new one runs on the free host.
    assert sorted(h for h, _ in hf.task_copies("split", task)) == sorted([victim, free])

    net[victim].heal()
    wait_for(lambda: hf.node(victim).get("connected"), 60, what=f"{victim} back")
    wait_for(lambda: [h for h, _ in hf.task_copies("split", task)] == [free], 30,
             what=f"the old copy of {task} stopped on {victim}")
    holds_for(lambda: [h for h, _ in hf.task_copies("split", task)] == [free], 3, what=f"one copy of {task}")
    assert hf.tasks("split")[task]["id"] == new_id
    assert_one_copy_each(hf, "split")
    # The replaced instance's volume is deleted on the old node once it is back.
    wait_for(lambda: not hf.agents[victim].find_in_volumes("split", inst, "starts"), 30,
             what=f"{inst}'s old volume deleted on {victim}")


def test_node_decommission_moves_its_pods(hf, net, tmp_path):
    start_cluster(hf, net, "abc")
    hf.deploy(spec(tmp_path, "dec", 2, '[["hostname", "UNIQUE"]]'))
    placed = nodes_of(hf, "dec")
    inst = "app-1"
    victim = placed[inst]
    free = ({"a1", "a2", "a3"} - set(placed.values())).pop()
    out = hf.cli("node", "decommission", victim).stdout
    assert f"dec/{inst}" in out, out
    wait_for(lambda: nodes_of(hf, "dec")[inst] == free
             and hf.tasks("dec")[f"{inst}-server"]["status"] == "RUNNING", 60,
             what=f"{inst} moved to {free}")
    wait_for(lambda: [h for h, _ in hf.task_copies("dec", f"{inst}-server")] == [free], 30,
             what=f"{inst}-server stopped on {victim}")
    assert len(read(hf.agents[free].find_in_volumes("dec", inst, "starts")[0]).splitlines()) == 1
    assert hf.node(victim)["decommissioned"] is True
    # Nothing new goes to a decommissioned node.
    hf.deploy(spec(tmp_path, "after", 3, '[["hostname", "UNIQUE"]]'), wait=False)
    wait_for(lambda: "decommissioned" in hf.steps("after")["app-2:[server]"]["message"], 60,
             what="app-2 of 'after' blocked by the decommissioned node")
    assert victim not in nodes_of(hf, "after").values()
    assert_one_copy_each(hf, "dec")


def test_permanent_failure_timeout_replaces_automatically(hf, net, tmp_path):
    start_cluster(hf, net, "abc")
    hf.deploy(spec(tmp_path, "auto", 2, '[["hostname", "UNIQUE"]]',
                   extra_top="replacement-failure-policy: {permanent-failure-timeout-ms: 4000}"))
    placed = nodes_of(hf, "auto")
    inst = "app-0"
    victim = placed[inst]
    free = ({"a1", "a2", "a3"} - set(placed.values())).pop()
    net[victim].kill()
    net[victim].cut()
    t0 = time.time()
    wait_for(lambda: nodes_of(hf, "auto")[inst] == free
             and hf.tasks("auto")[f"{inst}-server"]["status"] == "RUNNING", 60,
             what=f"{inst} replaced on {free} by itself")
    took = time.time() - t0
    print(f"replaced {took:.1f}s after the host died")
    assert took >= NODE_TIMEOUT + 4 - 1, f"replaced too early ({took:.1f}s)"
    assert_one_copy_each(hf, "auto")


def test_healthy_nodes_stay_reachable_with_the_default_agent_wait(net, tmp_path):
    """The server holds an agent's long poll for at most half the node
    timeout, so a short --node-timeout never makes healthy nodes flap."""
    from netns import Holdfast
    hf = Holdfast(net, node_timeout=NODE_TIMEOUT, agent_wait=None)
    try:
        start_cluster(hf, net, "ab")
        holds_for(lambda: all(n["connected"] for n in hf.nodes()), 12, interval=0.25,
                  what="every node connected")
    finally:
        hf.stop()


# ---------------------------------------------------------------------
# several servers on etcd


def start_ha(hf, net, nservers=2, nagents=3, lease_ttl=3):
    """A 3-member etcd cluster on hosts e1..e3, servers on s1..sN using it
    (lease TTL lease_ttl), agents on a1..aN that know every server."""
    etcd_hosts = [net.add_host(f"e{i}") for i in range(1, 4)]
    hf.start_etcd(etcd_hosts)
    servers = [hf.start_server(net.add_host(f"s{i}"), store=hf.etcd.url,
                               extra=("--lease-ttl", str(lease_ttl)), wait=False)
               for i in range(1, nservers + 1)]
    first = hf.wait_leader()
    agents = [hf.start_agent(net.add_host(f"a{i}"), attributes={"zone": "z"})
              for i in range(1, nagents + 1)]
    return servers, first, agents


def test_leader_killed_mid_deploy_another_takes_over(hf, net, tmp_path):
    servers, first, _ = start_ha(hf, net)
    path = spec(tmp_path, "ha", 3, '[["hostname", "UNIQUE"]]')
    hf.deploy(path, wait=False)
    wait_for(lambda: any(s["status"] != "PENDING" for ph in hf.get("/v1/service/ha/plans/deploy")["phases"]
                         for s in ph["steps"]), 60, what="the deploy under way")
    # Kill the leader's whole host mid-deploy.
    first.host.kill()
    new = hf.wait_leader(timeout=60, exclude=(first,))
    assert new is not first
    hf.wait_plan("ha", timeout=120)
    assert_one_copy_each(hf, "ha")
    # Each instance launched exactly once: its volume's start log has one line.
    for inst, node in nodes_of(hf, "ha").items():
        starts = hf.agents[node].find_in_volumes("ha", inst, "starts")
        assert len(starts) == 1 and len(read(starts[0]).splitlines()) == 1, (inst, starts)
    # The old leader, when it comes back, follows: it sends writes to the
    # leader and answers reads from the store, as the leader would.
    first.start(wait=False)
    holds_for(lambda: hf.leader() is new, 8)
    st, body = hf.api("POST", "/v1/service/ha/pod/app-0/restart", server=first)
    assert st == 503 and body.get("leader") == new.url, (st, body)
    # An agent's sync too (with its node's own credential, which the
    # follower knows from the store).
    node, agent = next(iter(hf.agents.items()))
    node_token = read(os.path.join(agent.data, "node-token")).strip()
    st, body = hf.api("POST", "/v1/agent/sync", body={"node_id": node}, server=first,
                      token=node_token)
    assert st == 503 and body.get("error") == "not-leader", (st, body)

    def same_view():
        st, mine = hf.api("GET", "/v1/service/ha/pod/status", server=first)
        return st == 200 and mine == hf.get("/v1/service/ha/pod/status")
    wait_for(same_view, 20, what="the follower's reads to match the leader's")
    assert hf.get("/v1/leader", server=first)["leader"] == new.url


def etcd_json(hf, *args):
    p = hf.etcd.ctl(*args, "-w", "json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def etcd_keys_at(hf, rev):
    """{key: mod_revision} of the whole keyspace as of revision rev."""
    body = etcd_json(hf, "get", "", "--prefix", "--rev", str(rev))
    return {base64.b64decode(kv["key"]).decode(): int(kv["mod_revision"])
            for kv in body.get("kvs", [])}


def test_leader_cut_off_from_etcd_stops_acting(hf, net, tmp_path):
    servers, first, _ = start_ha(hf, net)
    path = spec(tmp_path, "part", 2, '[["hostname", "UNIQUE"]]')
    hf.deploy(path)
    # Partition the leader's host: it can reach neither etcd nor agents.
    # Give it work first, so that it has writes to make while cut off.
    hf.cli("-s", "part", "pod", "restart", "app-1")
    first.host.cut("drop")
    # etcd's revision once the cut is in place (in-flight requests have
    # landed by then; the leader's lease has not expired yet).
    time.sleep(0.5)
    cut_rev = int(etcd_json(hf, "get", "/leader")["header"]["revision"])
    # It stops acting on its own, before its lease could have expired
    # (so before anyone else may lead), and exits.
    wait_for(lambda: not first.proc.alive(), 30, what="the cut-off leader to stop")
    new = hf.wait_leader(timeout=60, exclude=(first,))
    assert new is not first
    # The absence of its writes: from the cut until the new leader's
    # campaign, the only change in etcd is its leader key expiring with
    # its lease. Nothing else was written by anyone.
    leader_kv = etcd_json(hf, "get", "/leader")["kvs"][0]
    new_rev = int(leader_kv["create_revision"])
    before, after = etcd_keys_at(hf, cut_rev), etcd_keys_at(hf, new_rev - 1)
    assert set(before) - set(after) == {"/leader"}, (set(before) ^ set(after))
    assert set(after) <= set(before), set(after) - set(before)
    written = {k: r for k, r in after.items() if r > cut_rev}
    assert not written, f"keys written while the old leader was cut off: {written}"
    assert new_rev - cut_rev == 2, (cut_rev, new_rev)
    # The cluster goes on under the new leader: a change still happens.
    hf.cli("-s", "part", "pod", "restart", "app-0")
    wait_for(lambda: hf.tasks("part")["app-0-server"]["restarts"] >= 1 and
             hf.tasks("part")["app-0-server"]["status"] == "RUNNING", 60,
             what="a restart carried out by the new leader")
    assert_one_copy_each(hf, "part")
    # Healed and restarted, the old leader follows.
    first.host.heal()
    first.start(wait=False)
    holds_for(lambda: hf.leader() is new, 6)


def test_agent_whose_first_server_follows_joins_the_leader(hf, net, tmp_path):
    """Each agent registers a credential of its own with the leader; a
    follower answers a new agent's sync and registration 503 with the
    leader's URL (it cannot check a node's credential), so an agent that
    lists the follower first moves on and joins."""
    servers, leader, _ = start_ha(hf, net, nagents=0)
    follower = [s for s in servers if s is not leader][0]
    wait_for(lambda: hf.ping(follower), 60, what="the follower's API")
    st, body = hf.api("POST", "/v1/agent/register",
                      body={"node_id": "x", "token": "t" * 40}, server=follower)
    assert st == 503 and body.get("leader") == leader.url, (st, body)
    agent = hf.start_agent(net.add_host("a1"), servers=[follower.url, leader.url])
    assert "its credential is registered with " + leader.url in agent.log()
    nodes = {n["id"]: n for n in hf.get("/v1/nodes")}
    assert nodes["a1"]["connected"], nodes
