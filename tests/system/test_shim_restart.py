"""System tests for holdfast-shim's restarts in place (launch.json's
"restart" policy; shim.h, RESTARTS): the shim itself starts the task again
when its process exits, in the same sandbox and cgroup, and says so in
status.json.

Driven like tests/system/test_shim.py (its helpers are reused). No timing is
asserted: backoffs are compared with one another, never with a number.
"""
import os
import signal

from test_shim import (alive, make_task, no_sanitizer_reports,  # noqa: F401
                       read, request, run_shim, start, status, wait_exit,
                       wait_for)


def launch(taskdir):
    """Starts the shim; the task may be running, or already in backoff."""
    r = run_shim(taskdir)
    assert r.returncode == 0, r.stderr
    return status(taskdir)


def kill_and_wait_restart(taskdir, st):
    """SIGKILLs the task's process; returns the status once it runs again."""
    n, pid = st["restarts"], st["pid"]
    os.kill(pid, signal.SIGKILL)

    def restarted():
        s = status(taskdir)
        return s if s["restarts"] == n + 1 and s["state"] == "running" else None
    st = wait_for(restarted, f"restart {n + 1}")
    assert st["pid"] != pid and alive(st["pid"]) and not alive(pid)
    return st


def test_kill_9_three_times_restarts_in_place_with_growing_backoff(tmp_path):
    # backoff: none before restart 1, then 0.24-0.3 s, then 0.48-0.6 s.
    taskdir, sandbox = make_task(
        tmp_path, "echo $$ >> starts; exec sleep 60",
        restart={"backoff_base": 0.3, "backoff_max": 10, "reset_after": 600})
    first = start(taskdir)
    assert first["state"] == "running" and first["restarts"] == 0
    assert first["last_exit_at"] is None and first["last_signal"] is None
    st, gaps = first, []
    for i in range(3):
        # "running" means its process started, not that the shell ran its
        # first line yet: a kill before that would leave no line in starts.
        wait_for(lambda: (sandbox / "starts").exists() and
                 str(st["pid"]) in read(sandbox / "starts").split(),
                 f"start {i} in starts")
        st = kill_and_wait_restart(taskdir, st)
        assert st["restarts"] == i + 1
        assert st["last_signal"] == 9 and st["last_exit_code"] is None
        assert st["exit_code"] is None and st["signal"] is None
        assert st["finished_at"] is None
        assert st["last_exit_at"] <= st["last_restart_at"] == st["started_at"]
        gaps.append(st["last_restart_at"] - st["last_exit_at"])
        # The same shim, sandbox and cgroup: restarted in place.
        assert st["shim_pid"] == first["shim_pid"] and alive(st["shim_pid"])
        assert st["cgroup"] == first["cgroup"] and st["pgid"] == st["pid"]
        if st["cgroup"]:
            procs = read(os.path.join(st["cgroup"], "cgroup.procs")).split()
            assert str(st["pid"]) in procs
    # Immediate first restart, then a backoff that grows.
    assert gaps[0] < gaps[1] < gaps[2], gaps
    # The last start's shell may not have run its first line yet.
    wait_for(lambda: str(st["pid"]) in read(sandbox / "starts").split(), "the last start in starts")
    starts = read(sandbox / "starts").split()
    assert len(starts) == 4 and starts[-1] == str(st["pid"]), starts
    assert "restarted in place (3 so far)" in st["message"]
    # A stop ends it for good: no restart after a stop.
    assert request(taskdir, {"op": "stop", "grace": 0}) == {"ok": True}
    st = wait_exit(taskdir)
    assert st["signal"] == 9 and st["stop_requested"] is True
    assert st["restarts"] == 3
    assert "after a stop request" in st["message"]
    assert len(read(sandbox / "starts").split()) == 4


def test_backoff_is_written_to_status_and_a_stop_ends_it_at_once(tmp_path):
    # The second exit waits 240-300 s: only the stop can end this test in
    # time (wait_exit gives up after 30 s).
    taskdir, sandbox = make_task(
        tmp_path, "echo x >> starts; exit 3",
        restart={"backoff_base": 300, "backoff_max": 600})
    r = launch(taskdir)
    st = wait_for(lambda: (lambda s: s if s["state"] == "backoff" else None)(
        status(taskdir)), "the backoff")
    assert st["restarts"] == 1 and st["last_exit_code"] == 3
    assert st["pid"] is None and st["restart_at"] > st["last_exit_at"]
    assert alive(st["shim_pid"]) and st["shim_pid"] == r["shim_pid"]
    assert request(taskdir, {"op": "status"})["state"] == "backoff"
    reply = request(taskdir, {"op": "signal", "signal": "HUP"})
    assert reply["ok"] is False and "restarted" in reply["error"]
    assert request(taskdir, {"op": "stop"}) == {"ok": True}
    st = wait_exit(taskdir)
    assert st["state"] == "exited" and st["exit_code"] == 3
    assert st["stop_requested"] is True and st["restarts"] == 1
    assert st["restart_at"] is None
    assert len(read(sandbox / "starts").split()) == 2


def test_sigterm_to_the_shim_during_backoff_ends_it(tmp_path):
    taskdir, _ = make_task(tmp_path, "exit 5",
                           restart={"backoff_base": 300, "backoff_max": 600})
    r = launch(taskdir)
    wait_for(lambda: status(taskdir)["state"] == "backoff", "the backoff")
    os.kill(r["shim_pid"], signal.SIGTERM)
    st = wait_exit(taskdir)
    assert st["exit_code"] == 5 and st["stop_requested"] is True


def test_max_restarts_then_the_last_exit_is_final(tmp_path):
    taskdir, sandbox = make_task(
        tmp_path, "echo x >> starts; exit 4",
        restart={"backoff_base": 0.01, "backoff_max": 0.02, "max": 2})
    launch(taskdir)
    st = wait_exit(taskdir)
    assert st["state"] == "exited" and st["exit_code"] == 4
    assert st["restarts"] == 2 and st["stop_requested"] is False
    assert st["last_exit_code"] == 4
    assert "not restarted: 3 exits in a row" in st["message"], st["message"]
    assert len(read(sandbox / "starts").split()) == 3


def test_without_a_policy_the_shim_exits_with_its_task(tmp_path):
    taskdir, sandbox = make_task(tmp_path, "echo x >> starts; exec sleep 60")
    st = start(taskdir)
    # "running" is before the shell's first line: let it write, then kill
    # (the file exists once the shell opened it, before the line is in).
    wait_for(lambda: (sandbox / "starts").exists() and read(sandbox / "starts").strip(),
             "the start's line")
    os.kill(st["pid"], signal.SIGKILL)
    st = wait_exit(taskdir)
    assert st["signal"] == 9 and st["restarts"] == 0
    assert st["last_exit_at"] is None and st["last_restart_at"] is None
    assert not alive(st["shim_pid"])
    assert len(read(sandbox / "starts").split()) == 1


def test_invalid_restart_policy_is_refused(tmp_path):
    for bad, msg in ((5, '"restart" must be an object'),
                     ({"backof_base": 1}, 'unknown key "backof_base" in "restart"'),
                     ({"max": -1}, 'restart: "max" must be an integer'),
                     ({"backoff_base": "1"}, 'restart: "backoff_base" must be a number')):
        taskdir, _ = make_task(tmp_path, "true", name=f"t{abs(hash(msg))}",
                               restart=bad)
        r = run_shim(taskdir)
        assert r.returncode == 1 and msg in r.stderr, (bad, r.stderr)
        assert msg in status(taskdir)["message"]


def cgroup_procs(path):
    with open(os.path.join(path, "cgroup.procs")) as f:
        return {int(x) for x in f.read().split()}


def test_the_shim_lives_in_its_tasks_cgroup_so_restarts_are_born_there(tmp_path):
    """Moving a process into a cgroup waits for the kernel (an RCU grace
    period); a fork is born in its parent's. With a restart policy the shim
    moves in once, after the start: each restart's process is born in the
    cgroup, the shim survives the kill of everything else in it, and it goes
    back to where it was before the cgroup is removed."""
    from test_shim import cgroups_usable
    assert cgroups_usable(), "this machine's cgroups are not writable"
    taskdir, _ = make_task(tmp_path, "sleep 60",
                           restart={"backoff_base": 0.05, "backoff_max": 1,
                                    "reset_after": 600})
    first = launch(taskdir)
    cg = first["cgroup"]
    assert cg and os.path.isdir(cg), first
    shim = first["shim_pid"]
    wait_for(lambda: shim in cgroup_procs(cg), "the shim to move into the cgroup")
    assert first["pid"] in cgroup_procs(cg)
    st = first
    for _ in range(2):
        st = kill_and_wait_restart(taskdir, st)
        assert cgroup_procs(cg) == {shim, st["pid"]}, (cgroup_procs(cg), st)
    assert alive(shim)
    assert request(taskdir, {"op": "stop"}) == {"ok": True}
    st = wait_exit(taskdir)
    assert st["restarts"] == 2
    # It left the cgroup and removed it; nothing of the task is left.
    assert not os.path.exists(cg)


def test_an_oom_kill_in_the_cgroup_takes_the_task_not_the_shim(tmp_path):
    """The shim counts in its task's memory; the OOM killer still takes the
    task that went over (the largest), and the shim restarts it."""
    from test_shim import cgroups_usable
    assert cgroups_usable(), "this machine's cgroups are not writable"
    taskdir, sandbox = make_task(
        tmp_path,
        "echo $$ >> starts; [ $(wc -l < starts) -gt 1 ] && exec sleep 60; "
        "exec /usr/bin/python3 -c \"b = b'x' * (512 << 20); print(len(b))\"",
        memory_mb=48, cpus=1,
        restart={"backoff_base": 0.05, "backoff_max": 1, "reset_after": 600})
    first = launch(taskdir)
    shim = first["shim_pid"]

    def second():
        s = status(taskdir)
        return s if s["restarts"] == 1 and s["state"] == "running" else None
    st = wait_for(second, "the restart after the OOM kill")
    assert st["last_oom_killed"] is True and st["last_signal"] == 9, st
    assert st["shim_pid"] == shim and alive(shim)
    assert request(taskdir, {"op": "stop"}) == {"ok": True}
    wait_exit(taskdir)
    assert not os.path.exists(st["cgroup"])
