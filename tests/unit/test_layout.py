#!/usr/bin/env python3
"""test_layout.py - the module rules of src/ (docs/architecture.md), checked
on the source text. scripts/test.sh runs it (and `make layout`, which `make
unit` runs first).

Rules:
  cycles     no include cycle between modules (the folders of src/); no
             module includes main.c, which holds the binary's command table.
  pure       model/ and plan/ hold the cluster's records and rules: they
             include no store/, http/, server/, agent/, shim/ or cli/ header
             (nor pthread.h, common/clock.h, common/log.h, common/spawn.h),
             and call no clock, print, exit/abort or random source: the time
             and a random source are passed in. (hf_xmalloc's out-of-memory
             abort lives in common/.)
  pure-exists model/ exists.
  pure (files)
             the volume program's codecs (PURE_FILES: frames, replica
             metadata, bitmaps) are pure in a module that is not: the pure
             rules hold for them, and of their own module they include
             only each other (docs/design/volumes.md section 3).
  handler-fields
             server/api.c and server/ops.c assign no record field: HTTP
             handlers call operations (server/ops.c), which hand action
             lists to the one writer (server/apply.c).
  fork       every fork() is common/spawn.c's (hf_spawn_start,
             hf_spawn_fork): signals blocked around it, reset in the child,
             exec failures reported.
  clock      the clocks are read in common/clock.c only (one wall clock, one
             monotonic clock), so pure code can be given any time and the
             rest reads one clock.

ALLOW below lists today's known exceptions, each with why and when its row
goes. A row that is no longer needed fails the check too, so whoever fixes
an exception deletes its row.

--self-test plants one violation of each rule in a scratch tree and checks
that the rule reports it (the check runs it before checking src/).
"""
import os
import re
import sys
import tempfile

# (rule, path relative to the repository, why and when the row goes)
ALLOW = [
]

PURE = ("model", "plan")
PURE_FORBIDDEN_MODULES = ("store", "http", "server", "agent", "shim", "cli")
PURE_FORBIDDEN_HEADERS = ("pthread.h", "common/clock.h", "common/log.h",
                          "common/spawn.h")
PURE_FORBIDDEN_CALLS = {
    "clock": ("time", "clock_gettime", "gettimeofday", "hf_now_ms",
              "hf_mono_ms", "hf_mono_ns", "hf_deadline_after_ms",
              "hf_sleep_ms", "sleep", "usleep", "nanosleep"),
    "print": ("printf", "fprintf", "vprintf", "vfprintf", "dprintf", "puts",
              "fputs", "putchar", "fputc", "perror", "hf_log", "write"),
    "exit": ("exit", "_exit", "_Exit", "abort", "quick_exit"),
    "random": ("random", "srandom", "rand", "srand", "rand_r", "drand48",
               "lrand48", "mrand48", "arc4random", "getrandom",
               "hf_random_hex", "hf_new_uuid", "RAND_bytes"),
}
PURE_FILES = tuple(f"src/volume/{name}" for name in (
    "volume.h", "volume.c", "wire.h", "wire.c", "meta.h", "meta.c",
    "bitmap.h", "bitmap.c"))
HANDLER_FILES = ("src/server/api.c", "src/server/ops.c")
FIELD_ASSIGN = re.compile(r"\b(svc|in|run|r|n|sl|cfg)->[a-z_]+ *=[^=]")
SPAWN_FILE = "src/common/spawn.c"
CLOCK_FILE = "src/common/clock.c"
CLOCK_CALLS = ("clock_gettime", "gettimeofday", "time", "nanosleep")


def strip_c(text):
    """The code without comments, string and character literals (their
    places kept as spaces, so line numbers stay)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * max(0, min(j, n) - i - 1) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def sources(root):
    """(module, path relative to root, text) of every .c/.h under src/<module>/."""
    src = os.path.join(root, "src")
    for mod in sorted(os.listdir(src)):
        d = os.path.join(src, mod)
        if not os.path.isdir(d):
            continue
        for dirpath, _, files in os.walk(d):
            for f in sorted(files):
                if f.endswith((".c", ".h")):
                    p = os.path.join(dirpath, f)
                    with open(p, encoding="utf-8", errors="replace") as fh:
                        yield mod, os.path.relpath(p, root), fh.read()


INCLUDE = re.compile(r'^\s*#\s*include\s+[<"]([^>"]+)[>"]', re.M)


def line_of(text, pos):
    return text.count("\n", 0, pos) + 1


def calls(code, names):
    """(name, offset) of each call of one of names, not a member's."""
    rx = re.compile(r"(?<![\w.>])(" + "|".join(map(re.escape, names)) +
                    r")\s*\(")
    for m in rx.finditer(code):
        yield m.group(1), m.start(1)


def check(root):
    """Returns {(rule, path): [problem, ...]} for the tree at root."""
    found = {}

    def report(rule, path, msg):
        found.setdefault((rule, path), []).append(msg)

    graph, edge_at = {}, {}
    files = list(sources(root))
    for mod, path, text in files:
        graph.setdefault(mod, set())
        code = strip_c(text)
        for m in INCLUDE.finditer(text):
            inc = m.group(1)
            where = f"{path}:{line_of(text, m.start())}"
            if inc.startswith("main"):
                report("cycles", path, f"{where}: includes {inc}: no module "
                       "includes main.c")
            if "/" in inc and not m.group(0).rstrip().endswith(">"):
                dep = inc.split("/")[0]
                if dep != mod:
                    graph[mod].add(dep)
                    edge_at.setdefault((mod, dep), where)
            if mod in PURE or path in PURE_FILES:
                if inc.split("/")[0] in PURE_FORBIDDEN_MODULES or \
                        inc in PURE_FORBIDDEN_HEADERS:
                    report("pure", path, f"{where}: {mod}/ includes {inc}")
            if path in PURE_FILES and inc.split("/")[0] == mod and \
                    f"src/{inc}" not in PURE_FILES:
                report("pure", path, f"{where}: a pure file of {mod}/ "
                       f"includes {inc}, which is not one")
        if mod in PURE or path in PURE_FILES:
            for kind, names in PURE_FORBIDDEN_CALLS.items():
                for name, off in calls(code, names):
                    report("pure", path, f"{path}:{line_of(code, off)}: "
                           f"{mod}/ calls {name}() ({kind})")
        if path != SPAWN_FILE:
            for name, off in calls(code, ("fork", "vfork", "clone", "clone3")):
                report("fork", path, f"{path}:{line_of(code, off)}: {name}() "
                       "outside common/spawn.c (use hf_spawn_start or "
                       "hf_spawn_fork)")
        if path != CLOCK_FILE:
            for name, off in calls(code, CLOCK_CALLS):
                report("clock", path, f"{path}:{line_of(code, off)}: {name}() "
                       "outside common/clock.c (use hf_now_ms, hf_mono_ms, "
                       "hf_deadline_after_ms or hf_sleep_ms)")
        if path in HANDLER_FILES:
            for lineno, line in enumerate(code.split("\n"), 1):
                if FIELD_ASSIGN.search(line):
                    report("handler-fields", path, f"{path}:{lineno}: "
                           f"assigns a record field: {line.strip()}")

    # Cycles: a module that reaches itself through another.
    def reach(start):
        seen, todo = set(), [start]
        while todo:
            for d in graph.get(todo.pop(), ()):
                if d not in seen:
                    seen.add(d)
                    todo.append(d)
        return seen
    for mod in sorted(graph):
        for dep in sorted(graph[mod]):
            if mod in reach(dep):
                report("cycles", f"src/{mod}", f"{edge_at[(mod, dep)]}: "
                       f"{mod}/ includes {dep}/, which includes {mod}/ "
                       "(directly or not)")
    for mod in PURE:
        if not os.path.isdir(os.path.join(root, "src", mod)):
            report("pure-exists", f"src/{mod}", f"src/{mod}/ does not exist")
    return found


def verdict(found, allow):
    """The lines to print for a failing check; empty when it passes."""
    bad = []
    allowed = {(r, p) for r, p, _ in allow}
    for (rule, path), msgs in sorted(found.items()):
        if (rule, path) in allowed:
            continue
        bad.append(f"[{rule}] " + msgs[0] +
                   (f" (and {len(msgs) - 1} more)" if len(msgs) > 1 else ""))
        bad.extend(f"    {m}" for m in msgs[1:6])
    for rule, path, why in allow:
        if (rule, path) not in found:
            bad.append(f"[allow-list] the row ({rule!r}, {path!r}) is no "
                       f"longer needed: delete it from {__file__} ({why})")
    return bad


def self_test():
    """Plants one violation per rule; each must be reported."""
    files = {
        "src/a/a.c": '#include "b/b.h"\n',
        "src/b/b.h": '#include "a/a.h"\n',
        "src/a/a.h": "",
        "src/plan/p.c": '#include "store/store.h"\n#include <pthread.h>\n'
                        'void f(void) { printf("x"); exit(1); '
                        'int t = time(0); long r = random(); '
                        's->time(1); /* printf() */ }\n',
        "src/server/api.c": "void h(void) { svc->name = x; if (in->a == 1) {} }\n",
        "src/agent/x.c": 'void g(void) { pid_t p = fork(); '
                         'clock_gettime(CLOCK_REALTIME, &ts); '
                         'puts("fork()"); }\n',
        "src/common/spawn.c": "void s(void) { fork(); }\n",
        "src/common/clock.c": "void c(void) { clock_gettime(0, 0); }\n",
        "src/volume/wire.c": '#include "volume/fuse.h"\n'
                             '#include "volume/meta.h"\n'
                             'void w(void) { abort(); }\n',
        "src/volume/fuse.c": 'void u(void) { abort(); }\n',
    }
    with tempfile.TemporaryDirectory() as root:
        for rel, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
            with open(os.path.join(root, rel), "w") as fh:
                fh.write(text)
        found = check(root)
    expect = {
        ("cycles", "src/a"), ("cycles", "src/b"), ("pure", "src/plan/p.c"),
        ("pure-exists", "src/model"), ("handler-fields", "src/server/api.c"),
        ("fork", "src/agent/x.c"), ("clock", "src/agent/x.c"),
        ("clock", "src/plan/p.c"), ("pure", "src/volume/wire.c"),
    }
    problems = []
    if set(found) != expect:
        problems.append(f"reported {sorted(found)}, expected {sorted(expect)}")
    pure = " ".join(found.get(("pure", "src/plan/p.c"), []))
    for word in ("store/store.h", "pthread.h", "printf()", "exit()",
                 "time()", "random()"):
        if word not in pure:
            problems.append(f"the pure rule missed {word}: {pure}")
    vpure = " ".join(found.get(("pure", "src/volume/wire.c"), []))
    if "volume/fuse.h" not in vpure or "abort()" not in vpure or \
            "volume/meta.h" in vpure:
        problems.append(f"the pure rule for files is wrong: {vpure}")
    if pure.count("printf()") != 1 or pure.count("time()") != 1:
        problems.append(f"the pure rule counted a comment or a member: {pure}")
    if len(found.get(("handler-fields", "src/server/api.c"), [])) != 1:
        problems.append("handler-fields counted a comparison")
    if len(found.get(("fork", "src/agent/x.c"), [])) != 1:
        problems.append("the fork rule counted a string")
    stale = verdict({}, [("pure", "src/x", "gone")])
    if not stale or "no longer needed" not in stale[0]:
        problems.append("a stale allow-list row passed")
    return problems


def main(argv):
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    problems = self_test()
    if problems:
        print("test_layout.py: the check itself is broken:")
        print("\n".join("  " + p for p in problems))
        return 1
    if "--self-test" in argv:
        print("test_layout.py: self-test passed")
        return 0
    bad = verdict(check(root), ALLOW)
    if bad:
        print("module layout rules broken (tests/unit/test_layout.py):")
        print("\n".join(bad))
        return 1
    print(f"module layout: ok ({len(ALLOW)} allow-listed exception(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
