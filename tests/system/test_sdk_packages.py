"""DC/OS SDK packages as they ship, through the real binary (issue 10).

The hello-world package in ../shared/sdk-specs/helloworld-package/ (its
universe/ files and its specs) is rendered with the user's options the way
DC/OS did, validated, and deployed on a server and agent; the SDK's own
helloworld/svc.yml is deployed with FRAMEWORK_USER=nobody and an empty
principal. Every spec and template variable problem is caught before a
launch, and what the launch gives a task's config templates is what the
docs list.

The expected variables below were worked out by hand from config.json (the
defaults), single-node-options.json (the user's options) and
marathon.json.mustache (which option becomes which env entry), with the
value rules of docs/spec.md: strings as they are, whole numbers without a
fraction, booleans as true/false, sections on "" or false left out, build
placeholders filled as documented.
"""
import json
import os
import pwd
import re
import resource
import shutil
import subprocess

import pytest

from holdfast_harness import BIN, REPO, Cluster, wait_for, write

SDK = os.path.join(os.path.dirname(REPO), "shared", "sdk-specs")
PKG = os.path.join(SDK, "helloworld-package")
SINGLE = os.path.join(PKG, "single-node-options.json")
NOBODY = pwd.getpwnam("nobody").pw_uid

# file:line:col: error|warning: [path: ]message
DIAG_RE = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+): "
                     r"(?P<level>error|warning): (?:(?P<path>[^ :]+): )?(?P<msg>.+)$")


def diags(stderr):
    return [m for m in map(DIAG_RE.match, stderr.splitlines()) if m]


def artifacts(name):
    # artifact-dir is file://<the package directory>/artifacts; *-url
    # placeholders name a file there (docs/spec.md).
    return f"file://{os.path.realpath(PKG)}/artifacts/{name}"


# Worked out by hand; see the module comment.
EXPECTED_VARS = {
    "PACKAGE_NAME": "hello-world",            # package.json "name"
    "PACKAGE_VERSION": "unversioned",         # package.json has a placeholder
    "PACKAGE_BUILD_TIME_EPOCH_MS": "0",
    "PACKAGE_BUILD_TIME_STR": "unknown",
    "FRAMEWORK_NAME": "hello-world",          # service.name
    "FRAMEWORK_LOG_LEVEL": "INFO",            # service.log_level
    "FRAMEWORK_PRINCIPAL": "",                # service.service_account
    "FRAMEWORK_USER": "nobody",               # service.user
    "ENABLE_ROLE_MIGRATION": "false",
    "HELLO_COUNT": "1",
    "HELLO_CPUS": "0.1",
    "HELLO_GPUS": "1",                        # 1.0: a whole number
    "HELLO_MEM": "252",
    "HELLO_DISK": "25",
    "HELLO_SECCOMP_UNCONFINED": "false",
    # seccomp-profile-name and volume_profile are "": sections left out.
    "HELLO_PLACEMENT": "",                    # single-node-options.json
    "HELLO_KILL_GRACE_PERIOD": "0",           # 0 is a true section
    "HELLO_LABELS": "",
    "WORLD_COUNT": "2",
    "WORLD_CPUS": "0.2",
    "WORLD_MEM": "512",
    "WORLD_DISK": "25",
    "WORLD_PLACEMENT": "",                    # single-node-options.json
    "WORLD_KILL_GRACE_PERIOD": "0",
    # service.region is "": left out.
    "SLEEP_DURATION": "1000",                 # service.sleep
    "JAVA_URI": artifacts("scheduler-jre"),   # {{scheduler-jre-url}}
    "KEYSTORE_APP_URI": artifacts("keystore-app.zip"),
    "BOOTSTRAP_URI": artifacts("bootstrap.zip"),
    "LIBMESOS_URI": artifacts("libmesos-bundle"),  # {{libmesos-bundle-url}}
    # service_account_secret is "": left out.
    "ENABLE_BACKOFF": "true",                 # task_failure_backoff.enabled
    "FRAMEWORK_BACKOFF_FACTOR": "1.15",
    "FRAMEWORK_INITIAL_BACKOFF": "60",
    "FRAMEWORK_MAX_LAUNCH_DELAY": "300",
    # the hello/world secrets are "": left out.
    "DISCOVERY_TASK_PREFIX": "discovered",    # tls.discovery_task_prefix
    # custom_service_tld is "": left out.
    "CONTAINER_LOGGER_LOGROTATE_MAX_STDOUT_SIZE": "2MB",
    "CONTAINER_LOGGER_LOGROTATE_MAX_STDERR_SIZE": "2MB",
    "KEYSTORE_APP_VERSION": "0.1-SNAPSHOT",
    "NGINX_CONTAINER_VERSION": "0.1",
    "TEST_BOOLEAN": "true",
    "TEST_PROFILE_VOLUME_COMMAND": "",
    "SCENARIOS": "YAML",
    "ALLOW_REGION_AWARENESS": "true",
    "HELLO_PORT_ONE": "1729",
    "GLOG_v": "1",                            # verbose_mesos_logging
    "TASKCFG_ALL_PACKAGE_VERSION_TO_FORCE_UPDATE": "unversioned",
    "WORLD_READINESS_CHECK_INTERVAL": "5",
    "WORLD_READINESS_CHECK_DELAY": "0",
    "WORLD_READINESS_CHECK_TIMEOUT": "10",
    # external_volume_name is "" for both pods: left out.
    "ENABLE_AUTOMATIC_POD_REPLACEMENT": "true",
    "PERMANENT_FAILURE_TIMEOUT_SECS": "120",
    "MIN_REPLACE_DELAY_SECS": "240",
    "EXTERNAL_VOLUME_DRIVER_NAME": "pxd",
    "EXTERNAL_VOLUME_DRIVER_OPTIONS": "",
    "HELLO_RLIMIT_NOFILE_SOFT": "128000",
    "HELLO_RLIMIT_NOFILE_HARD": "128000",
    "WORLD_RLIMIT_NOFILE_SOFT": "128000",
    "WORLD_RLIMIT_NOFILE_HARD": "128000",
}


def holdfast(*args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True,
                       timeout=120, env=e)
    for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        assert bad not in p.stderr, p.stderr
    return p


# ---- rendering the package, no server ----------------------------------


def test_package_renders_the_variables_dcos_would_give():
    p = holdfast("spec", "render", "--package", PKG, "--options", SINGLE, "--json")
    assert p.returncode == 0, p.stderr
    assert diags(p.stderr) == [], p.stderr
    doc = json.loads(p.stdout)
    assert doc["package"]["spec"] == os.path.join(PKG, "src/main/dist/svc.yml")
    assert doc["package"]["variables"] == EXPECTED_VARS
    # The spec rendered with them: svc.yml, an empty principal falling
    # back to <name>-principal, no placement on a single node.
    assert doc["name"] == "hello-world"
    assert doc["scheduler"] == {"user": "nobody",
                                "principal": "hello-world-principal"}
    pods = {pod["name"]: pod for pod in doc["pods"]}
    assert pods["hello"]["count"] == 1 and pods["world"]["count"] == 2
    assert pods["hello"]["placement"] == "" and pods["hello"]["constraints"] == []

    # A directory in place of the spec is the same package.
    p2 = holdfast("spec", "render", PKG, "--options", SINGLE, "--json")
    assert p2.returncode == 0 and json.loads(p2.stdout) == doc

    p = holdfast("spec", "validate", "--package", PKG, "--options", SINGLE)
    assert p.returncode == 0, p.stderr
    assert p.stdout == f"{PKG}: valid (service 'hello-world', 2 pod types, 1 plan)\n"


def test_package_options_pick_the_spec_and_o_still_wins(tmp_path):
    opts = write(str(tmp_path / "o.json"), json.dumps(
        {"service": {"yaml": "simple", "name": "picked"}, "hello": {"placement": ""}}))
    p = holdfast("spec", "render", "--package", PKG, "--options", SINGLE,
                 "--options", opts, "-o", "HELLO_CPUS=0.3", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["package"]["spec"] == os.path.join(PKG, "src/main/dist/simple.yml")
    assert doc["name"] == "picked"
    hello = doc["pods"][0]
    assert hello["name"] == "hello"
    assert hello["resource-sets"][0]["cpus"] == 0.3
    # A build placeholder from the environment, as the SDK's tooling took it.
    p = holdfast("spec", "render", "--package", PKG, "--options", SINGLE, "--json",
                 env={"TEMPLATE_PACKAGE_VERSION": "2.9.0-1"})
    vars_ = json.loads(p.stdout)["package"]["variables"]
    assert vars_["PACKAGE_VERSION"] == "2.9.0-1"
    assert vars_["TASKCFG_ALL_PACKAGE_VERSION_TO_FORCE_UPDATE"] == "2.9.0-1"


def test_package_option_errors_point_into_the_files(tmp_path):
    opts = write(str(tmp_path / "bad.json"), """\
{
  "hello": {
    "count": "two",
    "rlimits": {"rlimit_nofile": {"soft": 20000}}
  },
  "service": {"log_level": "CHATTY"}
}
""")
    p = holdfast("spec", "validate", "--package", PKG, "--options", opts)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert p.stdout == ""
    got = {(m["file"], m["line"], m["col"], m["path"]): m["msg"] for m in diags(p.stderr)
           if m["level"] == "error"}
    assert set(got) == {
        (opts, "3", "14", "hello.count"),
        (opts, "4", "43", "hello.rlimits.rlimit_nofile.soft"),
        (opts, "6", "28", "service.log_level"),
    }, p.stderr
    assert "must be of type integer" in got[(opts, "3", "14", "hello.count")]
    assert "20000 is below the minimum 128000" in got[
        (opts, "4", "43", "hello.rlimits.rlimit_nofile.soft")]

    # The package's own template has a broken line in a section its
    # defaults leave out; filling it is reported at that template line.
    tmpl = os.path.join(PKG, "universe", "marathon.json.mustache")
    line = [i for i, l in enumerate(open(tmpl).read().splitlines(), 1)
            if '"HELLO_EXTERNAL_VOLUME_NAME: "' in l]
    assert len(line) == 1
    opts = write(str(tmp_path / "vol.json"),
                 json.dumps({"hello": {"external_volume_name": "v1"}}))
    p = holdfast("spec", "validate", "--package", PKG, "--options", opts)
    assert p.returncode == 1
    (m,) = [m for m in diags(p.stderr) if m["level"] == "error"]
    assert (m["file"], m["line"]) == (tmpl, str(line[0])), p.stderr
    assert "not valid JSON" in m["msg"]


def test_package_usage_errors(tmp_path):
    p = holdfast("spec", "validate", "--package", str(tmp_path))
    assert p.returncode == 2
    assert "universe/config.json" in p.stderr and "SDK package" in p.stderr
    p = holdfast("spec", "validate", "--package", PKG, "--options",
                 str(tmp_path / "nosuch.json"))
    assert p.returncode == 2 and "nosuch.json" in p.stderr
    p = holdfast("spec", "diff", "a.yml", "b.yml", "--package", PKG)
    assert p.returncode == 2


# ---- deploying --------------------------------------------------------


@pytest.fixture(scope="module")
def cl(tmp_path_factory):
    # Tasks run as nobody on a data directory private to root (pytest's
    # tmp_path): the task's namespace lets them reach their sandbox.
    d = str(tmp_path_factory.mktemp("sdkpkg"))
    os.chmod(d, 0o700)
    c = Cluster(d, backoff="0.3")
    c.start()
    try:
        yield c
    finally:
        c.stop()


def remove(cl, name):
    cl.cli("service", "remove", name, "--delete-volumes", "--wait", check=False)
    wait_for(lambda: name not in [s["name"] for s in cl.api("GET", "/v1/services")[1]],
             60, what=f"{name} removed")


def task_uids(cl, svc):
    """task name -> the uid its process runs as."""
    out = {}
    for name, t in cl.tasks(svc).items():
        pid = cl.task_pid(t["id"])
        status = open(f"/proc/{pid}/status").read()
        out[name] = int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))
    return out


def step(cl, svc, name, plan="deploy"):
    for ph in cl.plan(svc, plan).get("phases", []):
        for s in ph["steps"]:
            if s["name"] == name:
                return s
    return None


def nofile_hard():
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def can_raise_rlimits():
    """CAP_SYS_RESOURCE (bit 24) lets the agent raise a hard limit."""
    caps = int(re.search(r"^CapEff:\s+(\w+)", open("/proc/self/status").read(), re.M)
               .group(1), 16)
    return bool(caps & (1 << 24))


def test_package_deploys_and_a_too_high_rlimit_fails_once_saying_why(cl):
    # The package's default RLIMIT_NOFILE is 128000 (its schema's minimum).
    # Where the agent cannot raise its hard limit that far (this machine:
    # 20000, no CAP_SYS_RESOURCE), the launch must fail once, saying which
    # rlimit, the value and the limit. Where it can, ask for more than the
    # kernel allows (fs.nr_open) through -o.
    extra = []
    value = 128000
    if can_raise_rlimits() or nofile_hard() >= value:
        value = int(open("/proc/sys/fs/nr_open").read()) + 1
        extra = ["-o", f"HELLO_RLIMIT_NOFILE_SOFT={value}",
                 "-o", f"HELLO_RLIMIT_NOFILE_HARD={value}"]
    p = cl.cli("service", "deploy", "--package", PKG, "--options", SINGLE, *extra)
    assert "deployed hello-world (config 1)" in p.stdout, p.stdout
    try:
        # Up to the launch: the package's spec and variables reached the
        # server, and the first step was tried.
        status, cfg = cl.api("GET", "/v1/service/hello-world/configurations/target")
        assert status == 200, cfg
        wait_for(lambda: (step(cl, "hello-world", "hello-0:[server]") or {})
                 .get("status") not in (None, "PENDING"), 60, what="hello-0 launched")
        # Waits for the agent/shim work on rlimits (helper h2): the step
        # fails for good, once, with the rlimit, the value and the limit.
        s = wait_for(lambda: (lambda s: s if s and s["status"] == "ERROR" else None)(
            step(cl, "hello-world", "hello-0:[server]")), 60,
            what="hello-0:[server] in ERROR")
        assert "RLIMIT_NOFILE" in s["message"], s
        assert str(value) in s["message"], s
        if not extra:
            assert str(nofile_hard()) in s["message"], s
    finally:
        remove(cl, "hello-world")


def relaxed_package(tmp_path):
    """A copy of the package whose schema allows RLIMIT_NOFILE within the
    limit of machines without CAP_SYS_RESOURCE."""
    pkg = str(tmp_path / "helloworld-package")
    shutil.copytree(PKG, pkg)
    cfg_path = os.path.join(pkg, "universe", "config.json")
    cfg = json.load(open(cfg_path))
    for pod in ("hello", "world"):
        nofile = cfg["properties"][pod]["properties"]["rlimits"]["properties"][
            "rlimit_nofile"]["properties"]
        for k in ("soft", "hard"):
            nofile[k]["minimum"] = 1024
    write(cfg_path, json.dumps(cfg, indent=2))
    return pkg


def test_package_within_limits_completes_with_tasks_as_nobody(cl, tmp_path):
    pkg = relaxed_package(tmp_path)
    limits = {"rlimits": {"rlimit_nofile": {"soft": 1024, "hard": 4096}},
              "placement": ""}
    opts = write(str(tmp_path / "o.json"), json.dumps(
        {"service": {"name": "hw-pkg"}, "hello": limits, "world": limits}))
    # The original schema refuses these values, at the options file.
    p = holdfast("spec", "validate", "--package", PKG, "--options", opts)
    assert p.returncode == 1
    assert {m["path"] for m in diags(p.stderr) if m["level"] == "error"} == {
        f"{pod}.rlimits.rlimit_nofile.{k}" for pod in ("hello", "world")
        for k in ("soft", "hard")}, p.stderr
    p = holdfast("spec", "validate", "--package", pkg, "--options", opts)
    assert p.returncode == 0, p.stderr
    p = cl.cli("service", "deploy", "--package", pkg, "--options", opts)
    assert "deployed hw-pkg" in p.stdout
    try:
        wait_for(lambda: (step(cl, "hw-pkg", "hello-0:[server]") or {})
                 .get("status") not in (None, "PENDING"), 60, what="hello-0 launched")
        # Waits for non-root tasks in the agent and shim (helper h2).
        cl.wait_plan("hw-pkg", timeout=90)
        uids = task_uids(cl, "hw-pkg")
        assert sorted(uids) == ["hello-0-server", "world-0-server", "world-1-server"]
        assert set(uids.values()) == {NOBODY}, uids
    finally:
        remove(cl, "hw-pkg")


def test_sdk_svc_yml_as_nobody_with_empty_principal(cl):
    hard = min(nofile_hard(), 4096)
    p = cl.cli("service", "deploy", "-f", os.path.join(SDK, "helloworld", "svc.yml"),
               "--options", os.path.join(SDK, "helloworld-options.json"),
               "--options", os.path.join(SDK, "helloworld-single-node.json"),
               "-o", "FRAMEWORK_NAME=hw-svc", "-o", "FRAMEWORK_USER=nobody",
               "-o", "FRAMEWORK_PRINCIPAL=",
               "-o", "HELLO_RLIMIT_NOFILE_SOFT=1024", "-o", f"HELLO_RLIMIT_NOFILE_HARD={hard}",
               "-o", "WORLD_RLIMIT_NOFILE_SOFT=1024", "-o", f"WORLD_RLIMIT_NOFILE_HARD={hard}")
    assert "deployed hw-svc" in p.stdout
    try:
        status, cfg = cl.api("GET", "/v1/service/hw-svc/configurations/target")
        assert status == 200, cfg
        wait_for(lambda: (step(cl, "hw-svc", "hello-0:[server]") or {})
                 .get("status") not in (None, "PENDING"), 60, what="hello-0 launched")
        # Waits for non-root tasks in the agent and shim (helper h2).
        cl.wait_plan("hw-svc", timeout=90)
        assert set(task_uids(cl, "hw-svc").values()) == {NOBODY}
    finally:
        remove(cl, "hw-svc")


CORE_SITE = "name={{TASK_NAME}}\nzk={{SERVICE_ZK_ROOT}}\n"

NEEDS_ZK = """\
name: needs-zk
pods:
  journal:
    count: 1
    tasks:
      node:
        goal: RUNNING
        cmd: sleep 1000
        cpus: 0.1
        configs:
          core-site: {template: core-site.xml.mustache, dest: conf/core-site.xml}
"""


def test_server_refuses_a_config_variable_no_task_gets(cl):
    # The server loads a spec through the same functions as the CLI: a
    # client that skips the CLI's check is refused before anything runs.
    status, body = cl.api("POST", "/v1/services", {
        "spec": NEEDS_ZK, "file": "needs-zk.yml", "options": {},
        "templates": {"core-site.xml.mustache": CORE_SITE}})
    assert status == 400, body
    assert body["error"] == "invalid-spec"
    (d,) = [d for d in body["diagnostics"] if d["level"] == "error"]
    assert (d["file"], d["line"], d["col"]) == ("core-site.xml.mustache", 2, 4), d
    assert "SERVICE_ZK_ROOT" in d["message"]
    assert "-o TASKCFG_ALL_SERVICE_ZK_ROOT=VALUE" in d["message"]
    assert "needs-zk" not in [s["name"] for s in cl.api("GET", "/v1/services")[1]]
    # Given the way the message says, it deploys.
    status, body = cl.api("POST", "/v1/services", {
        "spec": NEEDS_ZK, "file": "needs-zk.yml",
        "options": {"TASKCFG_ALL_SERVICE_ZK_ROOT": "/needs-zk"},
        "templates": {"core-site.xml.mustache": CORE_SITE}})
    assert status == 201, body
    remove(cl, "needs-zk")


# Every variable the docs say a launch gives a config template.
LAUNCH_ENV = ["TASK_NAME", "POD_INSTANCE_INDEX", "POD_NAME", "FRAMEWORK_NAME",
              "SERVICE_NAME", "MESOS_CONTAINER_IP", "MESOS_SANDBOX",
              "HOLDFAST_SANDBOX", "PATH", "HOME", "PORT_WEB"]


def test_config_templates_get_every_launch_variable(cl, tmp_path):
    write(str(tmp_path / "env.conf.mustache"),
          "".join(f"{k}={{{{{k}}}}}\n" for k in LAUNCH_ENV))
    spec = write(str(tmp_path / "envs.yml"), """\
name: envs
pods:
  app:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: cp conf/env.conf data/env.conf && sleep 1000
        cpus: 0.1
        memory: 32
        ports:
          web: {port: 0}
        volume: {path: data, type: ROOT, size: 10}
        configs:
          env: {template: env.conf.mustache, dest: conf/env.conf}
        readiness-check: {cmd: test -s data/env.conf, interval: 1, timeout: 5}
""")
    p = holdfast("spec", "validate", spec)
    assert p.returncode == 0 and diags(p.stderr) == [], p.stderr
    cl.deploy(spec)
    try:
        vol = cl.volume_dir("envs", "app-0")
        (conf,) = [os.path.join(r, f) for r, _, fs in os.walk(vol) for f in fs
                   if f == "env.conf"]
        env = dict(l.split("=", 1) for l in open(conf).read().splitlines())
        assert set(env) == set(LAUNCH_ENV)
        assert env["TASK_NAME"] == "app-0-server" and env["POD_NAME"] == "app-0"
        assert env["POD_INSTANCE_INDEX"] == "0"
        assert env["FRAMEWORK_NAME"] == env["SERVICE_NAME"] == "envs"
        assert env["MESOS_CONTAINER_IP"] == "127.0.0.1"  # the agent's address
        assert env["MESOS_SANDBOX"] == env["HOLDFAST_SANDBOX"] == env["HOME"]
        assert env["MESOS_SANDBOX"].endswith("/sandbox")
        assert int(env["PORT_WEB"]) > 0 and env["PATH"]
    finally:
        remove(cl, "envs")


def test_launch_time_hint_names_taskcfg(cl, tmp_path):
    # A task only a custom plan launches may get a variable from a plan
    # parameter, so validation only warns; started without it, the launch
    # fails naming the TASKCFG_ option that would give it.
    write(str(tmp_path / "backup.conf.mustache"), "dest={{DEST}}\n")
    spec = write(str(tmp_path / "b.yml"), """\
name: bk
pods:
  app:
    count: 1
    tasks:
      server: {goal: RUNNING, cmd: sleep 1000, cpus: 0.1}
      backup:
        goal: FINISH
        cmd: cat conf/backup.conf
        cpus: 0.1
        configs:
          b: {template: backup.conf.mustache, dest: conf/backup.conf}
plans:
  deploy:
    phases:
      main: {pod: app, steps: [default: [[server]]]}
  backup:
    phases:
      b: {pod: app, steps: [default: [[backup]]]}
""")
    p = holdfast("spec", "validate", spec)
    assert p.returncode == 0, p.stderr
    (w,) = diags(p.stderr)
    assert w["level"] == "warning" and "-p DEST=VALUE" in w["msg"], p.stderr
    cl.deploy(spec)
    try:
        cl.cli("-s", "bk", "plan", "start", "backup")
        s = wait_for(lambda: (lambda s: s if s and "DEST" in s["message"] else None)(
            step(cl, "bk", "app-0:[backup]", plan="backup")), 60,
            what="the backup step's failure")
        assert "TASKCFG_ALL_DEST=VALUE" in s["message"], s
        assert "--allow-missing" not in s["message"], s
    finally:
        remove(cl, "bk")
