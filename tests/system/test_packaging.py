"""holdfast installed like a system service (issue 10): the Debian package
that scripts/build-deb.sh builds from this tree, installed into a scratch
root with dpkg (maintainer scripts run outside a chroot with DPKG_ROOT),
and `make install` with PREFIX and DESTDIR.

Checked: the control fields and Depends against the libraries the binary
really links; the files, their modes and the conffiles; what the postinst
makes (the user, 0700 data directories) and that it starts nothing; the
installed binary, man page and bash completion; the units with
`systemd-analyze verify` and `security`, and the server's sandbox against
what the server does (its system calls and the files it writes, traced
with strace while it serves); removal and purge keeping the data.

The package is built from the release binary (build/holdfast), not
HOLDFAST_BIN: it is what an operator would install.
"""
import http.client
import json
import os
import pathlib
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time

import pytest

from holdfast_harness import REPO, wait_for

UNITS = ("holdfast-server.service", "holdfast-agent.service")


def sh(*args, check=True, timeout=600, **kw):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout, **kw)
    if check:
        assert p.returncode == 0, f"{' '.join(map(str, args))} -> {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def hf_version():
    src = open(os.path.join(REPO, "src/common/version.h")).read()
    return re.search(r'#define HF_VERSION "([^"]+)"', src).group(1)


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    out = tmp_path_factory.mktemp("deb")
    p = sh(os.path.join(REPO, "scripts/build-deb.sh"), out, timeout=1800)
    path = p.stdout.strip().splitlines()[-1]
    assert os.path.isfile(path) and path.endswith(".deb"), p.stdout
    return path


@pytest.fixture(scope="module")
def installed(deb, tmp_path_factory):
    """(root, calls): the package installed into root; calls is the file
    where stand-ins for systemctl and friends log any invocation."""
    root = tmp_path_factory.mktemp("root")
    for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates"):
        os.makedirs(root / d)
    (root / "var/lib/dpkg/status").write_text("")
    stubs = tmp_path_factory.mktemp("stubs")
    calls = stubs / "calls"
    for tool in ("systemctl", "deb-systemd-invoke", "deb-systemd-helper", "service",
                 "invoke-rc.d", "start-stop-daemon"):
        (stubs / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {calls}\n')
        (stubs / tool).chmod(0o755)
    env = dict(os.environ, PATH=f"{stubs}:{os.environ['PATH']}")
    sh("dpkg", f"--root={root}", "--force-script-chrootless", "--force-depends",
       "--log=/dev/null", "-i", deb, env=env)
    return root, calls, env


def control(deb):
    out = sh("dpkg-deb", "-f", deb).stdout
    fields, key = {}, None
    for line in out.splitlines():
        if line.startswith(" ") and key:
            fields[key] += "\n" + line
        else:
            key, _, v = line.partition(":")
            fields[key] = v.strip()
    return fields


def package_of(path):
    """The Debian package that ships a shared library (dpkg -S), whichever
    of /lib and /usr/lib it was registered under."""
    candidates = {path, os.path.realpath(path)}
    for p in list(candidates):
        if p.startswith("/usr/lib/"):
            candidates.add(p[len("/usr"):])
        elif p.startswith("/lib/"):
            candidates.add("/usr" + p)
    for p in sorted(candidates):
        r = sh("dpkg", "-S", p, check=False)
        if r.returncode == 0:
            return r.stdout.split(":")[0].strip()
    raise AssertionError(f"no package ships {path} ({candidates})")


def test_control_fields_and_depends(deb, installed):
    root, _, _ = installed
    f = control(deb)
    assert f["Package"] == "holdfast"
    assert f["Version"].startswith(hf_version() + "-"), f
    assert f["Architecture"] == sh("dpkg", "--print-architecture").stdout.strip()
    depends = [d.strip().split()[0] for d in f["Depends"].split(",")]
    # Every library the installed binary links comes from a package it
    # depends on.
    binary = root / "usr/bin/holdfast"
    needed = re.findall(r"^\s*NEEDED\s+(\S+)", sh("objdump", "-p", binary).stdout, re.M)
    resolved = dict(re.findall(r"^\s*(\S+) => (/\S+)", sh("ldd", binary).stdout, re.M))
    assert needed and set(needed) <= set(resolved), (needed, resolved)
    for soname in needed:
        pkg = package_of(resolved[soname])
        assert pkg in depends, (soname, pkg, f["Depends"])
    for lib in ("libyaml", "libjansson", "libmicrohttpd", "libcurl", "libsqlite3", "libssl",
                "libfuse3"):
        assert any(d.startswith(lib) for d in depends), (lib, f["Depends"])


def mode(p):
    return stat.S_IMODE(os.lstat(p).st_mode)


def test_files_modes_and_conffiles(installed):
    root, _, _ = installed
    want = {
        "usr/bin/holdfast": 0o755,
        "usr/bin/holdfast-volume": 0o755,
        "lib/systemd/system/holdfast-server.service": 0o644,
        "lib/systemd/system/holdfast-agent.service": 0o644,
        "etc/default/holdfast-server": 0o644,
        "etc/default/holdfast-agent": 0o644,
        "usr/lib/sysusers.d/holdfast.conf": 0o644,
        "usr/share/man/man1/holdfast.1.gz": 0o644,
        "usr/share/bash-completion/completions/holdfast": 0o644,
        "usr/share/doc/holdfast/copyright": 0o644,
        "usr/share/doc/holdfast/changelog.Debian.gz": 0o644,
        "usr/share/doc/holdfast/operations.md": 0o644,
        "usr/share/doc/holdfast/api.md": 0o644,
        "usr/share/doc/holdfast/README.md": 0o644,
    }
    for path, m in want.items():
        assert os.path.isfile(root / path), path
        assert mode(root / path) == m, (path, oct(mode(root / path)))
    # What dpkg recorded matches what is on disk.
    assert sh("dpkg", f"--root={root}", "--verify", "holdfast").stdout == ""
    conf = sh("dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f", "${Conffiles}",
              "holdfast").stdout
    assert "/etc/default/holdfast-server" in conf and "/etc/default/holdfast-agent" in conf


def test_postinst_makes_the_user_and_data_dirs_and_starts_nothing(installed):
    root, calls, _ = installed
    users = dict(line.split(":")[0:3:2] for line in (root / "etc/passwd").read_text().splitlines())
    assert "holdfast" in users, users
    uid = int(users["holdfast"])
    assert uid != 0
    server = root / "var/lib/holdfast/server"
    agent = root / "var/lib/holdfast/agent"
    assert mode(server) == 0o700 and os.stat(server).st_uid == uid
    assert mode(agent) == 0o700 and os.stat(agent).st_uid == 0
    assert os.path.isdir(root / "etc/holdfast")
    # Nothing enabled, started or restarted.
    assert not calls.exists(), calls.read_text()
    assert not os.path.exists(root / "etc/systemd/system/multi-user.target.wants")


def test_installed_binary_runs(installed):
    root, _, _ = installed
    hf = root / "usr/bin/holdfast"
    assert sh(hf, "--version").stdout.strip() == f"holdfast {hf_version()}"
    help_server = sh(hf, "help", "server").stdout
    for line in sh(hf, "_doc", "flags", "server").stdout.splitlines():
        assert line.split()[0] in help_server, line
    sh(hf, "spec", "validate", os.path.join(REPO, "examples/hello-world.yml"))


def test_man_page_renders(installed):
    root, _, _ = installed
    page = root / "usr/share/man/man1/holdfast.1.gz"
    p = sh("man", "--warnings", "-l", page, env=dict(os.environ, MANWIDTH="100"))
    assert p.stderr == "", p.stderr
    text = p.stdout
    assert "holdfast - deploy and operate stateful services" in text
    hf = root / "usr/bin/holdfast"
    for cmd in sh(hf, "_doc", "commands").stdout.splitlines():
        assert re.search(rf"^\s+{re.escape(cmd)}$", text, re.M), (cmd, text[:2000])
    for flag in ("--node-timeout", "--backoff-max", "--advertise", "--resources", "--tls-insecure"):
        assert flag in text, flag
    # groff itself finds nothing to warn about.
    roff = sh("gzip", "-dc", page).stdout
    g = subprocess.run(["groff", "-man", "-ww", "-Tutf8", "-z"], input=roff, capture_output=True,
                       text=True, timeout=60)
    assert g.returncode == 0 and g.stderr == "", g.stderr


def test_bash_completion_loads_and_completes(installed, tmp_path):
    root, _, _ = installed
    script = r"""
source /usr/share/bash-completion/bash_completion
__load_completion holdfast || { echo "not loaded"; exit 3; }
complete -p holdfast
t() {
	COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
	_holdfast holdfast "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
	echo "$*=$(printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ')"
}
t holdfast se
t holdfast -s redis plan st
t holdfast server --node
t holdfast help pod re
t holdfast service deploy -f SPECDIR/hello-w
"""
    script = script.replace("SPECDIR", os.path.join(REPO, "examples"))
    env = dict(os.environ, XDG_DATA_DIRS=str(root / "usr/share"), HOME=str(tmp_path),
               BASH_COMPLETION_USER_DIR=str(tmp_path / "none"))
    p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    got = dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)
    assert re.search(r"^complete .*-F _holdfast holdfast$", p.stdout, re.M), p.stdout
    assert got["holdfast se"].split() == ["server", "service"]
    assert got["holdfast -s redis plan st"].split() == ["start", "stop"]
    assert got["holdfast server --node"].split() == ["--node-timeout"]
    assert got["holdfast help pod re"].split() == ["replace", "restart", "resume"]
    assert got[f"holdfast service deploy -f {REPO}/examples/hello-w"].split() == [
        f"{REPO}/examples/hello-world.yml"]


def unit_settings(path):
    out = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            k, _, v = line.partition("=")
            out.setdefault(k, []).append(v)
    return out


# Settings that give a unit a mount namespace of its own: the agent's bind
# mounts would then be invisible to the host and to its next incarnation.
MOUNT_NAMESPACE_KEYS = {
    "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateMounts",
    "ReadWritePaths", "ReadOnlyPaths", "InaccessiblePaths", "TemporaryFileSystem",
    "BindPaths", "BindReadOnlyPaths", "ProtectKernelTunables", "ProtectKernelModules",
    "ProtectKernelLogs", "ProtectControlGroups", "ProtectProc", "ProcSubset",
    "RootDirectory", "RootImage", "MountFlags", "PrivateNetwork", "NetworkNamespacePath",
    "ProtectHostname", "PrivateUsers", "DynamicUser",
}
# Settings every task would inherit from the agent.
INHERITED_KEYS = {"NoNewPrivileges", "CapabilityBoundingSet", "SystemCallFilter",
                  "MemoryDenyWriteExecute", "RestrictNamespaces", "LockPersonality",
                  "RestrictSUIDSGID", "RestrictAddressFamilies", "SystemCallArchitectures"}


def test_units_verify_and_say_what_they_should(installed):
    root, _, _ = installed
    # systemd-analyze resolves the units' dependencies inside the root.
    targets = root / "usr/lib/systemd/system"
    targets.mkdir(parents=True, exist_ok=True)
    for f in os.listdir("/lib/systemd/system"):
        if f.endswith((".target", ".slice")):
            shutil.copy2(os.path.join("/lib/systemd/system", f), targets / f, follow_symlinks=True)
    p = sh("systemd-analyze", "verify", "--man=no", f"--root={root}",
           *(f"/lib/systemd/system/{u}" for u in UNITS), check=False)
    # verify only warns (exit 0) about unknown keys and bad values: any
    # output is a defect.
    assert p.returncode == 0 and p.stdout == "" and p.stderr == "", p.stdout + p.stderr
    p = sh("systemd-analyze", "security", "--offline=yes", f"--root={root}", "--threshold=20",
           "--no-pager", "/lib/systemd/system/holdfast-server.service", check=False)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr

    hf = root / "usr/bin/holdfast"
    server = unit_settings(root / "lib/systemd/system/holdfast-server.service")
    agent = unit_settings(root / "lib/systemd/system/holdfast-agent.service")
    for u, verb in ((server, "server"), (agent, "agent")):
        assert u["Restart"] == ["always"]
        words = u["ExecStart"][0].split()
        assert words[:2] == ["/usr/bin/holdfast", verb]
        # Every flag the unit passes is one the parser takes.
        table = {l.split()[0] for l in sh(hf, "_doc", "flags", verb).stdout.splitlines()}
        assert {w for w in words if w.startswith("--")} <= table, words
        assert "/etc/default/holdfast-" + verb in " ".join(u["EnvironmentFile"])
        assert os.path.isfile(root / f"etc/default/holdfast-{verb}")
    # The server: unprivileged, read-only system, its token file a credential.
    assert server["User"] == ["holdfast"]
    assert server["ProtectSystem"] == ["strict"] and server["NoNewPrivileges"] == ["yes"]
    assert server["CapabilityBoundingSet"] == [""]
    assert server["LoadCredential"] == ["tokens:/etc/holdfast/tokens"]
    assert "--tokens %d/tokens" in server["ExecStart"][0]
    assert server["StateDirectory"] == ["holdfast/server"]
    # The agent: its shims and tasks outlive it, it shares the host's
    # mounts, and the tasks inherit no restriction from it.
    assert agent["KillMode"] == ["process"]
    assert not MOUNT_NAMESPACE_KEYS & set(agent), MOUNT_NAMESPACE_KEYS & set(agent)
    assert not INHERITED_KEYS & set(agent), INHERITED_KEYS & set(agent)
    assert "User" not in agent
    assert "--token" not in agent["ExecStart"][0]
    assert any("/etc/holdfast/agent.env" in e for e in agent["EnvironmentFile"])


def expand_syscall_groups(names, seen=None):
    seen = set() if seen is None else seen
    out = set()
    for n in names:
        if not n.startswith("@"):
            out.add(n)
            continue
        if n in seen:
            continue
        seen.add(n)
        listing = sh("systemd-analyze", "syscall-filter", n).stdout
        members = [w for line in listing.splitlines()[1:]
                   for w in [line.strip()] if w and not w.startswith("#")]
        out |= expand_syscall_groups(members, seen)
    return out


WRITE_SYSCALLS = {"mkdir", "mkdirat", "rename", "renameat", "renameat2", "unlink", "unlinkat",
                  "rmdir", "symlink", "symlinkat", "link", "linkat", "truncate", "chmod",
                  "fchmodat", "chown", "fchownat", "lchown", "mknod", "mknodat", "utimensat"}


@pytest.fixture
def nobody_dir():
    """A directory the user nobody owns and can reach (pytest's own
    temporary directories are private to root)."""
    d = tempfile.mkdtemp(prefix="hf-sandbox-")
    os.chmod(d, 0o700)
    os.chown(d, 65534, 65534)
    try:
        yield pathlib.Path(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_server_sandbox_allows_what_the_server_does(installed, nobody_dir):
    """Runs the installed server as an unprivileged user under strace while
    it deploys, updates and removes a service, then checks that its unit
    would let it: every system call is in the unit's SystemCallFilter and
    every file it writes is in its data directory (ProtectSystem=strict)."""
    root, _, _ = installed
    unit = unit_settings(root / "lib/systemd/system/holdfast-server.service")
    allow, deny = set(), set()
    for f in unit["SystemCallFilter"]:
        if f.startswith("~"):
            deny |= expand_syscall_groups(f[1:].split())
        else:
            allow |= expand_syscall_groups(f.split())
    allowed = allow - deny
    assert "openat" in allowed and "setuid" not in allowed and "setrlimit" not in allowed

    nobody = 65534
    tmp_path = nobody_dir
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    os.chown(data, nobody, nobody)
    tokens = tmp_path / "tokens"
    tokens.write_text("admin adm1n-token-for-the-sandbox-test\n")
    os.chown(tokens, nobody, nobody)
    tokens.chmod(0o400)
    # The installed binary, where nobody can reach it.
    binary = tmp_path / "holdfast"
    shutil.copy2(root / "usr/bin/holdfast", binary)
    trace = tmp_path / "trace"
    port_file = data / "port"
    srv = subprocess.Popen(
        ["setpriv", f"--reuid={nobody}", f"--regid={nobody}", "--clear-groups",
         "strace", "-f", "-qq", "-o", str(trace), str(binary), "server",
         "--data", str(data), "--tokens", str(tokens), "--listen", "127.0.0.1:0",
         "--port-file", str(port_file)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=str(tmp_path),
        start_new_session=True)
    try:
        wait_for(lambda: port_file.exists() or srv.poll() is not None, 60, what="server port")
        assert srv.poll() is None, srv.stdout.read().decode()
        port = int(port_file.read_text())

        def req(method, path, body=None):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                conn.request(method, path, body=json.dumps(body) if body is not None else None,
                             headers={"Authorization": "Bearer adm1n-token-for-the-sandbox-test",
                                      "Content-Type": "application/json"})
                r = conn.getresponse()
                return r.status, r.read()
            finally:
                conn.close()

        spec = ("name: sbx\npods:\n  p:\n    count: 1\n    tasks:\n      t:\n"
                "        goal: RUNNING\n        cmd: sleep 100\n        cpus: 0.1\n"
                "        memory: 32\n        env: {V: '{{V}}'}\n")
        assert req("GET", "/v1/version")[0] == 200
        # The port file says "listening"; the lead (the store's lease)
        # follows within moments, later under strace on a loaded machine.
        st = wait_for(lambda: (lambda r: r if r[0] != 503 else None)(
            req("POST", "/v1/services", {"spec": spec, "options": {"V": "1"}})), 30,
            what="the server to lead")
        assert st[0] == 201, st
        assert req("PUT", "/v1/services/sbx", {"spec": spec, "options": {"V": "2"}})[0] == 200
        assert req("GET", "/v1/services")[0] == 200
        assert req("GET", "/v1/service/sbx/plans/deploy")[0] in (200, 202)
        assert req("GET", "/v1/events?follow=false")[0] == 200
        assert req("GET", "/metrics")[0] == 200
        assert req("DELETE", "/v1/services/sbx")[0] == 202
        time.sleep(1)
    finally:
        if srv.poll() is None:
            os.killpg(srv.pid, signal.SIGTERM)
        srv.wait(30)
    assert srv.returncode == 0, srv.stdout.read().decode()

    used, writes = set(), set()
    lines = trace.read_text().splitlines()
    started = False
    for line in lines:
        m = re.match(r"\d+\s+(?:<\.\.\. (\w+) resumed>|(\w+)\()", line)
        if not m:
            continue
        name = m.group(1) or m.group(2)
        # The server's own calls start at its execve (before it: strace).
        if name == "execve" and "holdfast" in line:
            started = True
        if not started:
            continue
        used.add(name)
        path = re.search(r'"((?:[^"\\]|\\.)*)"', line)
        if not path:
            continue
        if (name in WRITE_SYSCALLS or
                (name in ("open", "openat", "creat") and re.search(r"O_WRONLY|O_RDWR|O_CREAT", line))):
            writes.add(os.path.join(str(tmp_path), path.group(1)))
    assert "openat" in used and "accept4" in used, sorted(used)
    assert used - allowed == set(), f"not allowed by the unit's SystemCallFilter: {sorted(used - allowed)}"
    # PrivateTmp= gives it /tmp and /var/tmp of its own (SQLite's temporary
    # files); everything else is read-only.
    outside = sorted(w for w in writes if not (w.startswith(str(data) + "/") or w == "/dev/null"
                                              or w.startswith(("/tmp/", "/var/tmp/"))))
    assert not outside, f"writes outside the data directory: {outside}"
    assert any(w.startswith(str(data) + "/holdfast.db") for w in writes), sorted(writes)


def test_make_install_honours_prefix_and_destdir(tmp_path):
    dest = tmp_path / "dest"
    mk = ["make", "--no-print-directory", "-C", REPO, f"DESTDIR={dest}", "PREFIX=/opt/hf"]
    sh(*mk, "install", timeout=1800)
    for path, m in {"opt/hf/bin/holdfast": 0o755,
                    "opt/hf/bin/holdfast-volume": 0o755,
                    "opt/hf/share/man/man1/holdfast.1": 0o644,
                    "opt/hf/share/bash-completion/completions/holdfast": 0o644,
                    "opt/hf/lib/systemd/system/holdfast-server.service": 0o644,
                    "opt/hf/lib/systemd/system/holdfast-agent.service": 0o644,
                    "opt/hf/lib/sysusers.d/holdfast.conf": 0o644,
                    "opt/hf/share/doc/holdfast/operations.md": 0o644,
                    "etc/default/holdfast-server": 0o644,
                    "etc/default/holdfast-agent": 0o644}.items():
        assert os.path.isfile(dest / path), path
        assert mode(dest / path) == m, (path, oct(mode(dest / path)))
    for u, verb in (("holdfast-server", "server"), ("holdfast-agent", "agent")):
        text = (dest / f"opt/hf/lib/systemd/system/{u}.service").read_text()
        assert f"ExecStart=/opt/hf/bin/holdfast {verb} " in text
        assert not re.search(r"@[A-Z]+@", text), text  # every placeholder substituted
    # The operator's settings survive a second install and the uninstall.
    (dest / "etc/default/holdfast-server").write_text("HOLDFAST_LISTEN=10.0.0.1:7070\n")
    sh(*mk, "install", timeout=600)
    assert (dest / "etc/default/holdfast-server").read_text() == "HOLDFAST_LISTEN=10.0.0.1:7070\n"
    sh(*mk, "uninstall", timeout=600)
    assert not os.path.exists(dest / "opt/hf/bin/holdfast")
    assert not os.path.exists(dest / "opt/hf/bin/holdfast-volume")
    assert not os.path.exists(dest / "opt/hf/lib/systemd/system/holdfast-server.service")
    assert not os.path.exists(dest / "opt/hf/share/man/man1/holdfast.1")
    assert not os.path.exists(dest / "opt/hf/share/doc/holdfast")
    assert os.path.isfile(dest / "etc/default/holdfast-server")


def test_remove_and_purge_keep_the_data(installed):
    # Last: it removes the package the other tests look at.
    root, calls, env = installed
    (root / "var/lib/holdfast/agent/marker").write_text("volume data\n")
    sh("dpkg", f"--root={root}", "--force-script-chrootless", "--log=/dev/null", "-r",
       "holdfast", env=env)
    assert not os.path.exists(root / "usr/bin/holdfast")
    assert not os.path.exists(root / "lib/systemd/system/holdfast-agent.service")
    assert os.path.isfile(root / "etc/default/holdfast-agent")  # conffiles stay until purge
    sh("dpkg", f"--root={root}", "--force-script-chrootless", "--log=/dev/null", "-P",
       "holdfast", env=env)
    assert not os.path.exists(root / "etc/default/holdfast-agent")
    assert (root / "var/lib/holdfast/agent/marker").read_text() == "volume data\n"
    assert os.path.isdir(root / "var/lib/holdfast/server")
    assert not calls.exists(), calls.read_text()
