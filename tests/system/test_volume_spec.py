"""System tests for external volumes in `holdfast spec validate|render`:
the SDK's hello-world external-volumes spec with holdfast's driver, bad
driver-options reported at file:line:col, and the refusals a deploy would
make. Only the CLI runs (no server), so these are cheap.

HOLDFAST_BIN selects the binary (default: the sanitizer build).
"""
import json
import os
import re
import subprocess
from pathlib import Path

BIN = os.environ.get("HOLDFAST_BIN", "/work/main/build-asan/holdfast")
REPO = Path(__file__).resolve().parents[2]
SDK = REPO.parent / "shared" / "sdk-specs"
SDK_OPTS = ("--options", SDK / "helloworld-options.json",
            "--options", SDK / "helloworld-single-node.json")
EXTERNAL = SDK / "helloworld" / "external-volumes.yml"

DIAG_RE = re.compile(
    r"^(?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+): "
    r"(?P<level>error|warning): (?:(?P<path>[^ :]+): )?(?P<msg>.+)$")


def run(*args):
    p = subprocess.run([BIN, *map(str, args)], cwd=REPO, capture_output=True,
                       timeout=60, text=True)
    assert p.returncode >= 0, p.stderr
    for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        assert bad not in p.stderr, p.stderr
    return p


def diags(stderr):
    return [m for m in map(DIAG_RE.match, stderr.splitlines()) if m]


def test_sdk_external_volumes_validate_with_holdfast_driver():
    # The acceptance spec: valid and deployable, as is repl=1.
    for opts in ("size=1;repl=2", "size=1;repl=1"):
        p = run("spec", "validate", EXTERNAL, *SDK_OPTS,
                "-o", "EXTERNAL_VOLUME_DRIVER_NAME=holdfast",
                "-o", "EXTERNAL_VOLUME_DRIVER_OPTIONS=" + opts)
        assert p.returncode == 0, p.stderr
        assert not diags(p.stderr), p.stderr

    # The model shows the options as read and the names instances get.
    p = run("spec", "render", "--json", EXTERNAL, *SDK_OPTS,
            "-o", "EXTERNAL_VOLUME_DRIVER_NAME=holdfast",
            "-o", "EXTERNAL_VOLUME_DRIVER_OPTIONS=size=1;repl=2")
    assert p.returncode == 0, p.stderr
    model = json.loads(p.stdout)
    got = {pod["name"]: pod["external-volumes"][0] for pod in model["pods"]}
    assert got["hello"]["options"] == {
        "size": 1 << 30, "repl": 2, "min_sync": 1, "shared": False,
        "secure": False}
    assert got["hello"]["volume-names"] == "hello-world-hello-<index>"
    assert got["world"]["volume-names"] == "hello-world-world-<index>"


def test_bad_driver_options_are_errors_at_their_column(tmp_path):
    spec = tmp_path / "svc.yml"
    spec.write_text("""\
name: svc
pods:
  db:
    count: 1
    external-volumes:
      data:
        type: DOCKER
        container-path: data
        driver-name: pxd
        driver-options: size=1;repl=4;io_priority=high;size=2
    tasks:
      server: {goal: RUNNING, cmd: "sleep 1", cpus: 0.1}
""")
    p = run("spec", "validate", spec)
    assert p.returncode == 1, p.stderr
    path = "pods.db.external-volumes.data.driver-options"
    assert [(m["level"], m["line"], m["col"], m["path"], m["msg"])
            for m in diags(p.stderr)] == [
        ("error", "10", "32", path, "repl must be 1, 2 or 3, not '4'"),
        ("error", "10", "39", path,
         "unknown option 'io_priority': holdfast volumes take size, repl, "
         "shared, secure, secret_key, fs and min_sync"),
        ("error", "10", "56", path, "option 'size' is given twice"),
    ], p.stderr
    # Errors first: nothing says external volumes cannot run.
    assert "not supported" not in p.stderr


def test_refusals_name_what_cannot_run(tmp_path):
    spec = tmp_path / "svc.yml"
    spec.write_text("""\
name: svc
pods:
  db:
    count: 1
    external-volumes:
      data:
        type: DOCKER
        container-path: data
        driver-name: pxd
        driver-options: shared=true;secure=true
      logs:
        type: DOCKER
        container-path: logs
        driver-name: rexray
        volume-name: logs
    tasks:
      server: {goal: RUNNING, cmd: "sleep 1", cpus: 0.1}
""")
    p = run("spec", "validate", spec)
    assert p.returncode == 4, p.stderr
    got = [(m["line"], m["col"], m["msg"]) for m in diags(p.stderr)]
    assert ("10", "25", "shared (multi-writer) volumes are not supported: "
            "every instance would use one volume, 'svc-db'") in got, got
    # Encrypted volumes are supported (test_volume_keys.py): no refusal.
    assert not any("secure" in m for _, _, m in got), got
    assert ("14", "22", "volume driver 'rexray' is not available: holdfast "
            "serves 'holdfast' and 'pxd'") in got, got
    assert all(m["level"] == "warning" for m in diags(p.stderr))
