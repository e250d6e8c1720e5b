"""System tests for `holdfast spec validate|render|diff` and the CLI's help:
drive the real binary as an operator would and check exit codes, the
diagnostics on stderr, and the plans and diffs on stdout (text and --json).

HOLDFAST_BIN selects the binary (default: the sanitizer build). Every run is
checked for sanitizer reports and deaths by signal, so the robustness tests
at the end also catch memory errors the exit code alone would hide.
"""
import json
import os
import random
import re
import subprocess
from pathlib import Path

import pytest

BIN = os.environ.get("HOLDFAST_BIN", "/work/main/build-asan/holdfast")
REPO = Path(__file__).resolve().parents[2]
SDK = REPO.parent / "shared" / "sdk-specs"
FIXTURES = REPO / "tests" / "fixtures"
DEADLINE = 60

# file:line:col: error|warning: path: message  (path may be absent)
DIAG_RE = re.compile(
    r"^(?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+): "
    r"(?P<level>error|warning): (?:(?P<path>[^ :]+): )?(?P<msg>.+)$")


# ---- helpers ----------------------------------------------------------


def run(*args, cwd=REPO, timeout=DEADLINE):
    """Runs holdfast with args; fails on a signal or a sanitizer report."""
    p = subprocess.run([BIN, *map(str, args)], cwd=cwd, capture_output=True,
                       timeout=timeout)
    p.stdout = p.stdout.decode(errors="replace")
    p.stderr = p.stderr.decode(errors="replace")
    assert_clean(p, args)
    return p


def assert_clean(p, args):
    assert p.returncode >= 0, (
        f"holdfast {args} died of signal {-p.returncode}\n{p.stderr}")
    for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                "UndefinedBehaviorSanitizer"):
        assert bad not in p.stderr, f"holdfast {args}: {bad}\n{p.stderr}"


def diags(stderr):
    """The diagnostics lines of stderr as match objects (others ignored)."""
    return [m for m in map(DIAG_RE.match, stderr.splitlines()) if m]


def write(tmp_path, name, text):
    f = tmp_path / name
    f.write_text(text)
    return f


def plan_steps(render_stdout, plan="deploy"):
    """{phase: [step, ...]} of one plan from `spec render` text output."""
    phases, current, in_plan = {}, None, False
    for line in render_stdout.splitlines():
        if line.startswith("plan "):
            in_plan = line.split()[1] == plan
            continue
        if not in_plan:
            continue
        m = re.match(r"^  phase (\S+) ", line)
        if m:
            current = m.group(1)
            phases[current] = []
            continue
        m = re.match(r"^    step (.+)$", line)
        if m:
            phases[current].append(m.group(1))
    return phases


def json_plan(model, name):
    plans = [p for p in model["plans"] if p["name"] == name]
    assert len(plans) == 1, [p["name"] for p in model["plans"]]
    return plans[0]


def json_pod(model, name):
    pods = [p for p in model["pods"] if p["name"] == name]
    assert len(pods) == 1, [p["name"] for p in model["pods"]]
    return pods[0]


def pod_diff(d, name):
    pods = [p for p in d["pods"] if p["pod"] == name]
    assert len(pods) == 1, d
    return pods[0]


SDK_OPTS = ("--options", SDK / "helloworld-options.json",
            "--options", SDK / "helloworld-single-node.json")

TWO_PODS = """\
name: demo
pods:
  web:
    count: {web_count}
{web_extra}    tasks:
      server:
        goal: RUNNING
        cmd: "{web_cmd}"
        cpus: 0.1
        memory: 32
        volume:
          path: data
          type: ROOT
          size: {size}
  db:
    count: {db_count}
{db_extra}    tasks:
      server:
        goal: RUNNING
        cmd: "echo db"
        cpus: 0.1
        memory: 32
"""


def two_pods(tmp_path, name, web_count=2, web_cmd="echo one", size=16,
             db_count=3, db_extra="", web_extra="", drop_db=False):
    text = TWO_PODS.format(web_count=web_count, web_cmd=web_cmd, size=size,
                           db_count=db_count, db_extra=db_extra,
                           web_extra=web_extra)
    if drop_db:
        text = text[:text.index("  db:\n")]
    return write(tmp_path, name, text)


# ---- validate: exit codes and diagnostics ------------------------------


def test_validate_valid_exits_0(tmp_path):
    f = two_pods(tmp_path, "ok.yml")
    p = run("spec", "validate", f)
    assert p.returncode == 0, p.stderr
    assert "valid" in p.stdout and "'demo'" in p.stdout
    assert diags(p.stderr) == []


def test_validate_invalid_reports_every_problem_with_position(tmp_path):
    f = write(tmp_path, "bad.yml", """\
name: demo
pods:
  web:
    count: -1
    tasks:
      server:
        goal: RUNNING
        cmd: "echo"
        cpu: 0.1
        memory: 0
""")
    p = run("spec", "validate", f)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert p.stdout == ""
    lines = p.stderr.splitlines()
    assert lines, "no diagnostics"
    for line in lines:
        assert DIAG_RE.match(line), f"not file:line:col: error: path: msg: {line!r}"
    got = {(m["line"], m["col"], m["level"], m["path"]) for m in diags(p.stderr)}
    assert ("4", "12", "error", "pods.web.count") in got, p.stderr
    assert ("9", "9", "error", "pods.web.tasks.server.cpu") in got, p.stderr
    assert ("10", "17", "error", "pods.web.tasks.server.memory") in got, p.stderr
    assert all(m["file"] == str(f) for m in diags(p.stderr))
    assert "did you mean 'cpus'?" in p.stderr


def test_validate_warnings_do_not_fail(tmp_path):
    f = write(tmp_path, "warn.yml", """\
name: demo
scheduler:
  user: nobody
  zookeeper: master.mesos:2181
pods:
  web:
    count: 1
    user: root
    tasks:
      server: {goal: RUNNING, cmd: "true", cpus: 0.1}
""")
    p = run("spec", "validate", f)
    assert p.returncode == 0, p.stderr
    got = {(m["level"], m["path"], m["line"]) for m in diags(p.stderr)}
    assert ("warning", "scheduler.zookeeper", "4") in got, p.stderr
    # A pod's user is honoured (over the service's): nothing to warn about.
    assert not any(path == "pods.web.user" for _, path, _ in got), p.stderr


@pytest.mark.parametrize("args", [
    ["spec", "validate"],                           # no file
    ["spec", "validate", "a.yml", "b.yml"],         # too many files
    ["spec", "validate", "examples/hello-world.yml", "--bogus"],
    ["spec", "validate", "examples/hello-world.yml", "-o"],
    ["spec", "validate", "examples/hello-world.yml", "-o", "NOEQUALS"],
    ["spec", "validate", "examples/hello-world.yml", "-o", "=value"],
    ["spec", "validate", "examples/hello-world.yml", "--options",
     "/nonexistent/options.json"],
    ["spec", "render"],
    ["spec", "diff", "examples/hello-world.yml"],
])
def test_usage_errors_exit_2(args):
    p = run(*args)
    assert p.returncode == 2, (args, p.stdout, p.stderr)
    assert p.stderr.strip(), "a usage error says why"


def test_nonexistent_file_exits_2(tmp_path):
    missing = tmp_path / "nope.yml"
    p = run("spec", "validate", missing)
    assert p.returncode == 2, p.stderr
    assert str(missing) in p.stderr and "no such file" in p.stderr
    p = run("spec", "validate", missing, "--json")
    assert p.returncode == 2 and p.stdout == ""


def test_validate_json_shape(tmp_path):
    ok = write(tmp_path, "ok.yml", """\
name: demo
scheduler:
  zookeeper: master.mesos:2181
pods:
  web:
    count: 1
    user: root
    tasks:
      server: {goal: RUNNING, cmd: "true", cpus: 0.1}
""")
    p = run("spec", "validate", ok, "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["valid"] is True
    assert [d["level"] for d in doc["diagnostics"]] == ["warning"]
    assert doc["diagnostics"][0]["path"] == "scheduler.zookeeper"

    bad = write(tmp_path, "bad.yml", "name: demo\npods:\n  web:\n    count: x\n")
    p = run("spec", "validate", bad, "--json")
    assert p.returncode == 1
    doc = json.loads(p.stdout)
    assert doc["valid"] is False
    assert doc["diagnostics"], doc
    for d in doc["diagnostics"]:
        assert set(d) >= {"level", "file", "line", "col", "path", "message"}
        assert d["file"] == str(bad)
        assert d["level"] in ("error", "warning")
    by_path = {d["path"]: d for d in doc["diagnostics"]}
    assert by_path["pods.web.count"]["line"] == 4
    assert by_path["pods.web.count"]["col"] == 12
    assert by_path["pods.web.tasks"]["line"] == 3  # required, at the pod's key
    assert p.stderr.strip() == "", "--json keeps diagnostics off stderr"


# ---- render ----------------------------------------------------------------


HELLO_STEPS = {
    "hello": ["hello-0:[server]"],
    "world": ["world-0:[server]", "world-1:[server]"],
}


def test_render_hello_world_deploy_plan():
    p = run("spec", "render", "examples/hello-world.yml")
    assert p.returncode == 0, p.stderr
    assert "plan deploy (deploy, generated, strategy serial)" in p.stdout
    steps = plan_steps(p.stdout)
    assert steps == HELLO_STEPS, p.stdout
    assert list(steps) == ["hello", "world"]


def test_render_hello_world_json():
    p = run("spec", "render", "examples/hello-world.yml", "--json")
    assert p.returncode == 0, p.stderr
    model = json.loads(p.stdout)
    assert set(model) >= {"name", "web-url", "scheduler", "pods", "plans",
                          "not-supported-yet"}
    assert model["name"] == "hello-world"
    deploy = json_plan(model, "deploy")
    assert set(deploy) >= {"name", "kind", "generated", "strategy", "phases"}
    assert set(deploy["phases"][0]["steps"][0]) >= {"name", "pod", "index",
                                                   "tasks"}
    assert deploy["generated"] is True and deploy["kind"] == "deploy"
    assert [ph["name"] for ph in deploy["phases"]] == ["hello", "world"]
    assert {ph["name"]: [s["name"] for s in ph["steps"]]
            for ph in deploy["phases"]} == HELLO_STEPS
    world = json_pod(model, "world")
    assert world["count"] == 2 and world["allow-decommission"] is True
    assert model["not-supported-yet"] == []


def test_unsupported_fields_validate_and_are_listed(tmp_path):
    f = write(tmp_path, "u.yml", """\
name: demo
pods:
  web:
    count: 1
    image: nginx:1.25
    tasks:
      server:
        goal: RUNNING
        cmd: "true"
        cpus: 0.1
        gpus: 1
""")
    p = run("spec", "validate", f)
    # Valid, but a deploy would refuse it: its own exit status, no "valid".
    assert p.returncode == 4, p.stderr
    assert p.stdout == ""
    got = {(m["level"], m["path"], m["line"]) for m in diags(p.stderr)}
    assert got == {("warning", "pods.web.image", "5"),
                   ("warning", "pods.web.tasks.server.gpus", "11")}, p.stderr
    assert "cannot deploy" in p.stderr
    p = run("spec", "render", f, "--json")
    unsup = json.loads(p.stdout)["not-supported-yet"]
    assert {(u["path"], u["line"]) for u in unsup} == {
        ("pods.web.image", 5), ("pods.web.tasks.server.gpus", 11)}, unsup
    # The text form renders the model and says on stderr what a deploy
    # would refuse, with the same diagnostics as validate.
    p = run("spec", "render", f)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("service demo\n"), p.stdout
    got = {(m["level"], m["path"], m["line"]) for m in diags(p.stderr)}
    assert got == {("warning", "pods.web.image", "5"),
                   ("warning", "pods.web.tasks.server.gpus", "11")}, p.stderr
    assert "a deploy would refuse this spec" in p.stderr


def test_render_sdk_helloworld_with_options_files():
    svc = SDK / "helloworld" / "svc.yml"
    p = run("spec", "render", svc, *SDK_OPTS)
    assert p.returncode == 0, p.stderr
    assert plan_steps(p.stdout) == HELLO_STEPS, p.stdout
    p = run("spec", "render", svc, *SDK_OPTS, "--json")
    model = json.loads(p.stdout)
    assert model["name"] == "hello-world"
    # The second file is layered over the first.
    assert model["scheduler"]["user"] == "root"
    assert json_pod(model, "hello")["placement"] == "[]"
    assert json_pod(model, "hello")["constraints"] == []
    task = json_pod(model, "hello")["tasks"][0]
    assert task["env"]["SLEEP_DURATION"] == "1000"
    rs = json_pod(model, "world")["resource-sets"][0]
    assert rs["cpus"] == 0.2 and rs["memory"] == 512
    assert [v["size"] for v in rs["volumes"]] == [25, 25]


def test_render_sdk_helloworld_without_options_names_missing_variables():
    p = run("spec", "render", SDK / "helloworld" / "svc.yml")
    assert p.returncode == 1
    first = diags(p.stderr)[0]
    assert first["line"] == "1" and "FRAMEWORK_NAME" in first["msg"], p.stderr
    assert "variable HELLO_COUNT is not set" in p.stderr


def test_option_flag_overrides_options_files():
    svc = SDK / "helloworld" / "svc.yml"
    p = run("spec", "render", svc, *SDK_OPTS, "-o", "HELLO_COUNT=3",
            "-o", "FRAMEWORK_USER=alice", "--json")
    assert p.returncode == 0, p.stderr
    model = json.loads(p.stdout)
    assert json_pod(model, "hello")["count"] == 3
    assert model["scheduler"]["user"] == "alice"
    hello = json_plan(model, "deploy")["phases"][0]
    assert [s["name"] for s in hello["steps"]] == [
        "hello-0:[server]", "hello-1:[server]", "hello-2:[server]"]


MISSING = """\
name: demo
pods:
  web:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: "echo {{GREETING}} {{NAME}}"
        cpus: 0.1
        memory: 32
"""


def test_missing_variable_is_named_with_its_line(tmp_path):
    f = write(tmp_path, "m.yml", MISSING)
    p = run("spec", "validate", f, "-o", "NAME=x")
    assert p.returncode == 1
    ds = diags(p.stderr)
    assert len(ds) == 1, p.stderr
    assert ds[0]["file"] == str(f) and ds[0]["line"] == "8", p.stderr
    assert ds[0]["col"] == "20"
    assert "GREETING" in ds[0]["msg"] and "NAME" not in ds[0]["msg"]
    # Both, when neither is set.
    p = run("spec", "validate", f)
    assert p.returncode == 1
    assert sorted(m["msg"].split()[1] for m in diags(p.stderr)) == [
        "GREETING", "NAME"]


def test_allow_missing_renders_empty(tmp_path):
    f = write(tmp_path, "m.yml", MISSING)
    p = run("spec", "validate", f, "--allow-missing")
    assert p.returncode == 0, p.stderr
    p = run("spec", "render", f, "--allow-missing", "-o", "NAME=bob",
            "--json")
    assert p.returncode == 0, p.stderr
    task = json_pod(json.loads(p.stdout), "web")["tasks"][0]
    assert task["cmd"] == "echo  bob"


def test_sections_and_taskcfg_routing(tmp_path):
    f = write(tmp_path, "s.yml", """\
name: demo
pods:
  hello-world:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: "true"
        cpus: 0.1
        env:
          OWN: mine
        {{#SIDECAR}}
      sidecar:
        goal: RUNNING
        cmd: "true"
        cpus: 0.1
        {{/SIDECAR}}
""")
    common = ("-o", "TASKCFG_ALL_LEVEL=info", "-o",
              "TASKCFG_HELLO_WORLD_LEVEL=debug", "-o", "TASKCFG_ALL_OWN=x",
              "--json")
    p = run("spec", "render", f, "-o", "SIDECAR=false", *common)
    assert p.returncode == 0, p.stderr
    pod = json_pod(json.loads(p.stdout), "hello-world")
    assert [t["name"] for t in pod["tasks"]] == ["server"]
    assert pod["tasks"][0]["env"] == {"LEVEL": "debug", "OWN": "mine"}
    p = run("spec", "render", f, "-o", "SIDECAR=true", *common)
    pod = json_pod(json.loads(p.stdout), "hello-world")
    assert [t["name"] for t in pod["tasks"]] == ["server", "sidecar"]


def test_decommission_task_is_not_a_default_step(tmp_path):
    f = write(tmp_path, "d.yml", """\
name: demo
pods:
  db:
    count: 2
    allow-decommission: true
    volume-retention: retain
    tasks:
      server: {goal: RUNNING, cmd: "true", cpus: 0.1}
      decommission: {goal: FINISH, cmd: "true", cpus: 0.1}
""")
    p = run("spec", "render", f)
    assert p.returncode == 0, p.stderr
    assert plan_steps(p.stdout) == {"db": ["db-0:[server]", "db-1:[server]"]}
    bad = write(tmp_path, "bad.yml", f.read_text().replace(
        "decommission: {goal: FINISH", "decommission: {goal: RUNNING").replace(
        "retain", "forever"))
    p = run("spec", "validate", bad)
    assert p.returncode == 1
    paths = {m["path"] for m in diags(p.stderr)}
    assert paths == {"pods.db.volume-retention",
                     "pods.db.tasks.decommission.goal"}, p.stderr


# ---- diff ------------------------------------------------------------------


def diff_json(old, new, *extra):
    p = run("spec", "diff", old, new, *extra, "--json")
    return p.returncode, json.loads(p.stdout) if p.stdout else None, p.stderr


def test_diff_identical_is_empty(tmp_path):
    old = two_pods(tmp_path, "old.yml")
    p = run("spec", "diff", old, old)
    assert p.returncode == 0
    assert "no changes" in p.stdout
    rc, d, _ = diff_json(old, old)
    assert rc == 0 and d["allowed"] is True and d["refusals"] == []
    for pd in d["pods"]:
        assert pd["change"] == "unchanged" and pd["relaunch"] == []


def test_diff_cmd_change_relaunches_that_pod_only(tmp_path):
    old = two_pods(tmp_path, "old.yml")
    new = two_pods(tmp_path, "new.yml", web_cmd="echo two")
    rc, d, err = diff_json(old, new)
    assert rc == 0, err
    assert set(d) >= {"allowed", "refusals", "changes", "pods"}
    assert d["allowed"] is True and d["refusals"] == []
    web, db = pod_diff(d, "web"), pod_diff(d, "db")
    assert set(web) >= {"pod", "change", "old-count", "new-count", "relaunch",
                        "added", "removed", "changes"}
    assert web["change"] == "changed"
    assert web["relaunch"] == ["web-0", "web-1"]
    assert web["added"] == [] and web["removed"] == []
    assert any("tasks.server.cmd" in c and "echo one" in c and "echo two" in c
               for c in web["changes"]), web["changes"]
    assert db["change"] == "unchanged" and db["relaunch"] == []
    p = run("spec", "diff", old, new)
    assert "relaunch web-0" in p.stdout and "relaunch db-0" not in p.stdout
    assert "the change is allowed" in p.stdout
    # A count that does not change is said once.
    assert "pod web: changed (count 2)\n" in p.stdout, p.stdout


@pytest.mark.parametrize("old_extra,new_extra,line", [
    ("    placement: 'hostname:IS:a'\n", "", 'placement: "hostname:IS:a" -> null'),
    ("", "    allow-decommission: true\n", "allow-decommission: false -> true"),
    ("", "    volume-retention: retain\n", 'volume-retention: "delete" -> "retain"'),
])
def test_diff_settings_change_without_a_relaunch(tmp_path, old_extra, new_extra, line):
    """placement, allow-decommission and volume-retention alone: the pod is
    changed (an update makes a new config) and nothing relaunches."""
    old = two_pods(tmp_path, "old.yml", web_extra=old_extra)
    new = two_pods(tmp_path, "new.yml", web_extra=new_extra)
    rc, d, err = diff_json(old, new)
    assert rc == 0, err
    web = pod_diff(d, "web")
    assert web["change"] == "changed" and web["relaunch"] == [], web
    assert web["changes"] == [line], web["changes"]
    assert pod_diff(d, "db")["change"] == "unchanged"
    p = run("spec", "diff", old, new)
    assert p.stdout == f"pod web: changed (count 2)\n  change   {line}\n" \
        "pod db: unchanged (count 3)\nthe change is allowed\n", p.stdout


XVOL_POD = """\
name: demo
pods:
  db:
    count: 1
    external-volumes:
      data: {{type: DOCKER, container-path: data, driver-name: holdfast, driver-options: size=64M}}
{extra}    tasks:
      server: {{goal: RUNNING, cmd: "sleep 100", cpus: 0.1, memory: 32}}
"""
SCHED = "    backup-schedule: {{to: 's3://b/p', credential: site, every: {every}, keep: 2}}\n"
HOOKS = "    snapshot-hooks: {{before: '{before}'}}\n"


@pytest.mark.parametrize("old_extra,new_extra,key", [
    ("", SCHED.format(every="1h"), "backup-schedule"),
    (SCHED.format(every="10s"), SCHED.format(every="1h"), "backup-schedule"),
    (SCHED.format(every="10s"), "", "backup-schedule"),
    ("", HOOKS.format(before="sync"), "snapshot-hooks"),
    (HOOKS.format(before="sync"), HOOKS.format(before="true"), "snapshot-hooks"),
])
def test_diff_backup_schedule_and_hooks_change_without_a_relaunch(tmp_path, old_extra,
                                                                  new_extra, key):
    """A backup schedule or snapshot hooks added, changed or removed is a
    change (the update makes a new config, read at the next backup or
    snapshot) that relaunches nothing."""
    old = write(tmp_path, "old.yml", XVOL_POD.format(extra=old_extra))
    new = write(tmp_path, "new.yml", XVOL_POD.format(extra=new_extra))
    rc, d, err = diff_json(old, new)
    assert rc == 0 and d["allowed"] is True, (d, err)
    db = pod_diff(d, "db")
    assert db["change"] == "changed" and db["relaunch"] == [], db
    assert db["changes"] and all(c.startswith(key) for c in db["changes"]), db["changes"]


def test_diff_scale_out_adds_instances(tmp_path):
    old = two_pods(tmp_path, "old.yml")
    new = two_pods(tmp_path, "new.yml", db_count=5)
    rc, d, err = diff_json(old, new)
    assert rc == 0, err
    db = pod_diff(d, "db")
    assert (db["old-count"], db["new-count"]) == (3, 5)
    assert db["added"] == ["db-3", "db-4"]
    assert db["relaunch"] == [] and db["removed"] == []
    assert pod_diff(d, "web")["relaunch"] == []


def test_diff_count_decrease_needs_allow_decommission(tmp_path):
    old = two_pods(tmp_path, "old.yml")
    new = two_pods(tmp_path, "new.yml", db_count=1)
    p = run("spec", "diff", old, new)
    assert p.returncode == 1, p.stdout
    refusal = [l for l in p.stdout.splitlines() if l.startswith("refused:")]
    assert len(refusal) == 1, p.stdout
    assert "'db'" in refusal[0] and "3" in refusal[0] and "1" in refusal[0]
    assert "allow-decommission" in refusal[0]
    rc, d, _ = diff_json(old, new)
    assert rc == 1 and d["allowed"] is False
    assert pod_diff(d, "db")["removed"] == ["db-1", "db-2"]
    # Allowed once the new spec sets allow-decommission.
    ok = two_pods(tmp_path, "ok.yml", db_count=1,
                  db_extra="    allow-decommission: true\n")
    rc, d, err = diff_json(old, ok)
    assert rc == 0, (d, err)
    assert pod_diff(d, "db")["removed"] == ["db-1", "db-2"]


def test_diff_volume_size_change_refused(tmp_path):
    old = two_pods(tmp_path, "old.yml")
    new = two_pods(tmp_path, "new.yml", size=32)
    p = run("spec", "diff", old, new)
    assert p.returncode == 1
    refusal = [l for l in p.stdout.splitlines() if l.startswith("refused:")]
    assert len(refusal) == 1, p.stdout
    assert "'web'" in refusal[0] and "data" in refusal[0]
    assert "16 MB" in refusal[0] and "32 MB" in refusal[0]
    # 32 written as a unit is the same size: nothing to refuse.
    same = two_pods(tmp_path, "same.yml", size="0.015625GiB")
    rc, d, err = diff_json(old, same)
    assert rc == 0 and d["refusals"] == [], (d, err)


def test_diff_pod_removal_needs_allow_decommission_on_old(tmp_path):
    old = two_pods(tmp_path, "old.yml")
    new = two_pods(tmp_path, "new.yml", drop_db=True)
    rc, d, _ = diff_json(old, new)
    assert rc == 1 and d["allowed"] is False
    assert any("'db'" in r and "removed" in r for r in d["refusals"]), d
    db = pod_diff(d, "db")
    assert db["change"] == "removed" and db["removed"] == ["db-0", "db-1", "db-2"]
    old_ok = two_pods(tmp_path, "old-ok.yml",
                      db_extra="    allow-decommission: true\n")
    rc, d, err = diff_json(old_ok, new)
    assert rc == 0, (d, err)
    assert pod_diff(d, "db")["change"] == "removed"


def test_diff_old_option_applies_to_old_only(tmp_path):
    f = write(tmp_path, "t.yml", TWO_PODS.format(
        web_count="{{WEB}}", web_cmd="echo", size=16, db_count=1,
        db_extra="", web_extra=""))
    rc, d, err = diff_json(f, f, "-o", "WEB=3", "--old-option", "WEB=2")
    assert rc == 0, err
    web = pod_diff(d, "web")
    assert (web["old-count"], web["new-count"]) == (2, 3)
    assert web["added"] == ["web-2"]


# ---- help --------------------------------------------------------------------


def test_help():
    p = run("--help")
    assert p.returncode == 0
    assert "usage: holdfast" in p.stdout
    for cmd in ("spec validate", "spec render", "spec diff"):
        assert cmd in p.stdout


def test_help_spec_validate():
    p = run("help", "spec", "validate")
    assert p.returncode == 0
    assert p.stdout.startswith("usage: holdfast spec validate (FILE | --package DIR")
    assert "--allow-missing" in p.stdout and "Exit status" in p.stdout
    p2 = run("spec", "validate", "--help")
    assert p2.returncode == 0 and p2.stdout == p.stdout


def test_help_unknown_command_exits_2():
    p = run("help", "nosuch")
    assert p.returncode == 2
    assert "nosuch" in p.stderr and p.stdout == ""


def test_spec_alone_lists_verbs():
    p = run("spec")
    assert p.returncode == 2
    for verb in ("validate", "render", "diff"):
        assert re.search(rf"^\s+{verb}\s", p.stderr, re.M), p.stderr
    p = run("spec", "nosuch")
    assert p.returncode == 2 and "validate" in p.stderr


# ---- SDK specs as they ship, and a validate a CI gate can trust --------


KAFKA_LIKE = """\
name: kafka
pods:
  kafka:
    count: 1
    tasks:
      broker:
        goal: RUNNING
        cmd: "true"
        cpus: 0.1
        ports:
          broker:
            port: 0
            vip: {port: 9092}
"""


def test_validate_json_lists_not_supported_and_exit_status_tells_deploy(tmp_path):
    f = write(tmp_path, "kafka.yml", KAFKA_LIKE)
    p = run("spec", "validate", f, "--json")
    assert p.returncode == 4, (p.stdout, p.stderr)
    doc = json.loads(p.stdout)
    assert doc["valid"] is True and doc["deployable"] is False, doc
    vip = [d for d in doc["diagnostics"]
           if d["path"] == "pods.kafka.tasks.broker.ports.broker.vip"]
    assert len(vip) == 1 and vip[0]["line"] == 13, doc
    assert "not supported yet" in vip[0]["message"]
    # A deployable spec says so too.
    ok = two_pods(tmp_path, "ok.yml")
    doc = json.loads(run("spec", "validate", ok, "--json").stdout)
    assert doc["valid"] is True and doc["deployable"] is True


def test_validate_counts_the_generated_deploy_plan():
    p = run("spec", "validate", "examples/hello-world.yml")
    assert p.returncode == 0, p.stderr
    assert "(service 'hello-world', 2 pod types, 1 plan)" in p.stdout, p.stdout


def test_sdk_spec_with_empty_principal_validates():
    svc = SDK / "helloworld" / "svc.yml"
    p = run("spec", "render", svc, *SDK_OPTS, "-o", "FRAMEWORK_PRINCIPAL=",
            "-o", "FRAMEWORK_USER=nobody", "--json")
    assert p.returncode == 0, p.stderr
    model = json.loads(p.stdout)
    # The SDK's FrameworkConfig falls back to <service name>-principal.
    assert model["scheduler"] == {"user": "nobody",
                                  "principal": "hello-world-principal"}
    p = run("spec", "validate", svc, *SDK_OPTS, "-o", "FRAMEWORK_PRINCIPAL=")
    assert p.returncode == 0, p.stderr


def test_cassandra_style_task_name_with_underscore_validates(tmp_path):
    f = write(tmp_path, "c.yml", """\
name: cassandra
pods:
  node:
    count: 1
    tasks:
      server: {goal: RUNNING, cmd: "true", cpus: 0.1}
      init_system_keyspaces: {goal: ONCE, cmd: "true", cpus: 0.1}
""")
    p = run("spec", "render", f)
    assert p.returncode == 0, p.stderr
    assert plan_steps(p.stdout)["node"] == [
        "node-0:[server, init_system_keyspaces]"]
    # Names stay safe in ids and paths: "__" is refused.
    f = write(tmp_path, "d.yml", f.read_text().replace(
        "init_system_keyspaces", "init__keyspaces"))
    p = run("spec", "validate", f)
    assert p.returncode == 1
    assert [m["path"] for m in diags(p.stderr)] == [
        "pods.node.tasks.init__keyspaces"], p.stderr


def test_empty_external_volume_driver_options_are_the_defaults():
    # Empty options: every default (1 GiB, repl=1), which deploys.
    p = run("spec", "validate", SDK / "helloworld" / "external-volumes.yml",
            *SDK_OPTS, "-o", "EXTERNAL_VOLUME_DRIVER_NAME=pxd",
            "-o", "EXTERNAL_VOLUME_DRIVER_OPTIONS=")
    assert p.returncode == 0, p.stderr
    assert not diags(p.stderr), p.stderr


def test_phase_naming_unknown_pod_is_an_error(tmp_path):
    f = write(tmp_path, "p.yml", """\
name: demo
pods:
  web:
    count: 1
    tasks:
      server: {goal: RUNNING, cmd: "true", cpus: 0.1}
plans:
  deploy:
    phases:
      main:
        pod: webb
""")
    p = run("spec", "validate", f)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert p.stdout == ""
    (m,) = diags(p.stderr)
    assert (m["level"], m["path"], m["line"], m["col"]) == (
        "error", "plans.deploy.phases.main.pod", "11", "14")
    # The words `service deploy` refused it with.
    assert m["msg"] == ("plan 'deploy' phase 'main' refers to pod 'webb', "
                        "which the spec does not declare")


HDFS_LIKE = """\
name: hdfs
pods:
  journal:
    count: 1
    tasks:
      node:
        goal: RUNNING
        cmd: "true"
        cpus: 0.1
        configs:
          core-site:
            template: core-site.xml.mustache
            dest: conf/core-site.xml
"""

CORE_SITE = """\
<name>{{TASK_NAME}}</name>
<zk>{{SERVICE_ZK_ROOT}}</zk>
<host>{{TASK_NAME}}.{{FRAMEWORK_HOST}}</host>
"""


def test_validate_reports_every_variable_a_config_template_lacks(tmp_path):
    write(tmp_path, "core-site.xml.mustache", CORE_SITE)
    f = write(tmp_path, "hdfs.yml", HDFS_LIKE)
    p = run("spec", "validate", f)
    assert p.returncode == 1, (p.stdout, p.stderr)
    got = {(m["file"], m["line"], m["col"], m["path"]): m["msg"]
           for m in diags(p.stderr)}
    tmpl = str(tmp_path / "core-site.xml.mustache")
    path = "pods.journal.tasks.node.configs.core-site"
    assert set(got) == {(tmpl, "2", "5", path), (tmpl, "3", "21", path)}, got
    zk = got[(tmpl, "2", "5", path)]
    assert "SERVICE_ZK_ROOT" in zk and "-o TASKCFG_ALL_SERVICE_ZK_ROOT=VALUE" in zk
    assert "-o TASKCFG_JOURNAL_SERVICE_ZK_ROOT=VALUE" in zk
    assert "--allow-missing" not in zk
    # The way the message says works: both reach the task.
    p = run("spec", "validate", f, "-o", "TASKCFG_ALL_SERVICE_ZK_ROOT=/hdfs",
            "-o", "TASKCFG_JOURNAL_FRAMEWORK_HOST=hosts.example")
    assert p.returncode == 0, p.stderr
    # A plain -o does not reach a task's environment.
    p = run("spec", "validate", f, "-o", "SERVICE_ZK_ROOT=/hdfs",
            "-o", "FRAMEWORK_HOST=x")
    assert p.returncode == 1


def test_config_dest_two_levels_up_is_refused(tmp_path):
    write(tmp_path, "core-site.xml.mustache", "x\n")
    f = write(tmp_path, "hdfs.yml", HDFS_LIKE.replace(
        "dest: conf/core-site.xml", "dest: ../../core-site.xml"))
    p = run("spec", "validate", f)
    assert p.returncode == 1, (p.stdout, p.stderr)
    (m,) = diags(p.stderr)
    assert (m["level"], m["path"], m["line"], m["col"]) == (
        "error", "pods.journal.tasks.node.configs.core-site.dest", "13", "19")
    assert "climbs above the task's directory" in m["msg"]
    # One level up is the task's directory: written there, with a warning.
    f = write(tmp_path, "hdfs.yml", HDFS_LIKE.replace(
        "dest: conf/core-site.xml", "dest: ../core-site.xml"))
    p = run("spec", "validate", f)
    assert p.returncode == 0, p.stderr
    assert [m["level"] for m in diags(p.stderr)] == ["warning"]


def test_spec_diff_usage_lists_template_dir():
    p = run("help", "spec", "diff")
    assert p.returncode == 0
    assert "--template-dir DIR" in p.stdout.splitlines()[0], p.stdout


# ---- robustness: no spec, however malformed, crashes the binary --------


INVALID = sorted((FIXTURES / "invalid").glob("*.yml"))
VALID = sorted((FIXTURES / "valid").glob("*.yml"))


@pytest.mark.parametrize("fixture", INVALID, ids=lambda f: f.name)
def test_invalid_fixture_is_rejected_cleanly(fixture):
    p = run("spec", "validate", fixture, "--template-dir",
            FIXTURES / "valid")
    assert p.returncode in (0, 1), p.stderr
    assert p.returncode == 1, f"{fixture.name} was accepted"
    for line in p.stderr.splitlines():
        assert DIAG_RE.match(line) or line.startswith(str(fixture) + ":"), line


def mutate(rng, data):
    """One random, deterministic mutation of a spec's bytes."""
    lines = data.split(b"\n")
    op = rng.randrange(10)
    if op == 0:  # delete a range of bytes
        a = rng.randrange(len(data))
        return data[:a] + data[a + rng.randrange(1, 40):]
    if op == 1:  # duplicate a line (duplicate keys, bad indentation)
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
    elif op == 2:  # swap two lines
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif op == 3:  # insert hostile bytes
        a = rng.randrange(len(data) + 1)
        junk = rng.choice([b"\0", b"\r", b"{{", b"}}", b"{{#X}}", b"{{/Y}}",
                           b": ", b"- ", b"&a ", b"*a", b"*nope", b"[", b"{",
                           b"\t", b"\xff\xfe", b"'", b'"', b"|\n", b"!!binary "])
        return data[:a] + junk + data[a:]
    elif op == 4:  # truncate
        return data[:rng.randrange(len(data))]
    elif op == 5:  # re-indent a line
        i = rng.randrange(len(lines))
        lines[i] = b" " * rng.randrange(0, 12) + lines[i].lstrip()
    elif op == 6:  # replace a number with an extreme one
        nums = [m for m in re.finditer(rb"\b\d+(\.\d+)?\b", data)]
        if nums:
            m = rng.choice(nums)
            big = rng.choice([b"0", b"-1", b"99999999999999999999", b"1e308",
                              b"nan", b"0x10", b"9223372036854775807",
                              b"18446744073709551616", b"-0"])
            return data[:m.start()] + big + data[m.end():]
    elif op == 7:  # replace a value with a structure
        i = rng.randrange(len(lines))
        if b": " in lines[i]:
            k = lines[i].split(b": ", 1)[0]
            lines[i] = k + b": " + rng.choice([b"[]", b"{}", b"[[]]", b"~",
                                               b"{a: [1, {b: c}]}", b"''"])
    elif op == 8:  # random bit flips
        b = bytearray(data)
        for _ in range(rng.randrange(1, 8)):
            if b:
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        return bytes(b)
    else:  # insert a prefix of another line of the same file
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines.insert(i, lines[j][:rng.randrange(len(lines[j]) + 1)])
    return b"\n".join(lines)


def mutants(count=50, seed=20240518):
    rng = random.Random(seed)
    out = []
    for n in range(count):
        src = rng.choice(VALID)
        data = src.read_bytes()
        for _ in range(rng.randrange(1, 4)):
            if data:
                data = mutate(rng, data)
        out.append((f"{n:02d}-{src.name}", data))
    return out


def test_mutants_are_deterministic():
    assert mutants(5) == mutants(5)
    assert len({d for _, d in mutants()}) > 40, "mutations must differ"


@pytest.mark.parametrize("name,data", mutants(), ids=[n for n, _ in mutants()])
def test_mutated_spec_never_crashes(tmp_path, name, data):
    f = tmp_path / name
    f.write_bytes(data)
    for extra in ((), ("--allow-missing",), ("--json",)):
        p = run("spec", "validate", f, "--template-dir", FIXTURES / "valid",
                *extra)
        assert p.returncode in (0, 1), (extra, p.returncode, p.stderr)
        if "--json" in extra:
            assert json.loads(p.stdout)["valid"] == (p.returncode == 0)
    p = run("spec", "render", f, "--allow-missing", "--json", "--template-dir",
            FIXTURES / "valid")
    assert p.returncode in (0, 1), p.stderr
    if p.returncode == 0:
        json.loads(p.stdout)
        # A spec changed into itself changes nothing.
        p = run("spec", "diff", f, f, "--allow-missing", "--template-dir",
                FIXTURES / "valid")
        assert p.returncode == 0 and "no changes" in p.stdout, p.stdout


# ---- robustness: small hostile specs must not take unbounded time ------
#
# Both specs below are a few kilobytes. YAML aliases make them expand to
# tens of thousands of nodes. They once took minutes (a quadratic sort of
# diagnostics, pairwise task lookups in steps); the deadline catches a hang,
# it does not measure speed. A spec that expands past the parser's node
# bound is refused with a clear error instead.

HANG_DEADLINE = 15


def many_diagnostics_spec(items=100, copies=20, entries=40):
    """About items*copies*entries errors, mostly out of position order."""
    n = "[" + ",".join(["[]"] * items) + "]"
    g = "[" + ",".join(["*N"] * copies) + "]"
    steps = "\n".join(f"          - {i}: *G" for i in range(entries))
    return f"""x: &N {n}
y: &G {g}
name: a
pods:
  p:
    count: 1
    tasks:
      t: {{goal: RUNNING, cmd: x, cpus: 1}}
plans:
  deploy:
    phases:
      ph:
        pod: p
        steps:
{steps}
"""


def wide_steps_spec(tasks=300, groups=100, entries=3):
    """A valid spec: entries*groups steps, each naming all the tasks."""
    names = ",".join(f"a{i}" for i in range(tasks))
    more = "\n".join(f"      a{i}: *T" for i in range(1, tasks))
    g = "[" + ",".join(["*g"] * groups) + "]"
    extra = "\n".join(["          - 0: *G"] * (entries - 1))
    return f"""name: a
pods:
  p:
    count: 1
    tasks:
      a0: &T {{goal: RUNNING, cmd: x, cpus: 1}}
{more}
plans:
  deploy:
    phases:
      ph:
        pod: p
        steps:
          - 0: [&g [{names}]]
  other:
    phases:
      ph:
        pod: p
        steps:
          - 0: &G {g}
{extra}
"""


def test_many_diagnostics_do_not_hang(tmp_path):
    f = write(tmp_path, "many.yml", many_diagnostics_spec())
    assert len(f.read_bytes()) < 4096
    p = run("spec", "validate", f, timeout=HANG_DEADLINE)
    assert p.returncode == 1
    assert len(diags(p.stderr)) > 50000 or "too large" in p.stderr


def test_wide_steps_do_not_hang(tmp_path):
    f = write(tmp_path, "wide.yml", wide_steps_spec())
    assert len(f.read_bytes()) < 8192
    p = run("spec", "validate", f, timeout=HANG_DEADLINE)
    assert p.returncode == 0 or (p.returncode == 1 and "too large" in p.stderr), p.stderr


def test_global_json_flag_applies_to_spec_commands(tmp_path):
    """`holdfast --json spec ...` (the flag before the command, as for the
    server's commands) prints JSON, as `spec ... --json` does."""
    f = two_pods(tmp_path, "g.yml")
    for cmd in (["spec", "validate", f], ["spec", "render", f], ["spec", "diff", f, f]):
        p = run("--json", *cmd)
        assert p.returncode == 0, p.stderr
        after = run(*cmd, "--json")
        assert json.loads(p.stdout) == json.loads(after.stdout), (cmd, p.stdout)
