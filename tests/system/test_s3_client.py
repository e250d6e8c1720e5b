"""The S3 client of volume backups (src/volume/s3.h, docs/design/s3.md),
driven through `holdfast-volume s3` against a real S3 server: s3rver from
the npm registry, behind tests/s3_harness.py's proxy, which checks every
request's SigV4 signature, x-amz-content-sha256 and Content-MD5 as S3 does
(s3rver itself checks no V4 signature), and can fail requests on purpose.
Debian's s3cmd reads back what holdfast-volume wrote and the other way
round, which also shows that the proxy's checks agree with a second
client's signing.
"""
import hashlib
import http.client
import os
import random
import socket
import subprocess
import sys

import pytest

from holdfast_harness import BIN

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import s3_harness  # noqa: E402  (tests/, beside this directory)

VOLUME_BIN = os.path.join(os.path.dirname(BIN), "holdfast-volume")
MiB = 1 << 20


@pytest.fixture(scope="module")
def s3():
    with s3_harness.S3Server() as server:
        yield server


@pytest.fixture
def proxy(s3):
    s3.proxy.clear()
    s3.tls_proxy.clear()
    yield s3.proxy
    s3.proxy.clear()


_buckets = iter(range(1, 1000))


@pytest.fixture
def bucket(s3, proxy):
    """A new bucket; the proxy's log starts after its creation."""
    name = f"hf-test-{next(_buckets)}"
    r = vol(s3, "mb", name)
    assert r.returncode == 0, r.stderr
    proxy.clear()
    return name


def env_for(s3, secret=None, access=None):
    env = dict(os.environ)
    env["HOLDFAST_S3_ACCESS_KEY"] = access or s3.access_key
    env["HOLDFAST_S3_SECRET_KEY"] = secret or s3.secret_key
    return env


def vol(s3, *args, endpoint=None, env=None, stdin=None, binary=False):
    """Runs holdfast-volume s3 --endpoint ... ARGS."""
    cmd = [VOLUME_BIN, "s3", "--endpoint", endpoint or s3.endpoint, *args]
    return subprocess.run(cmd, env=env or env_for(s3), input=stdin,
                          capture_output=True, text=not binary, timeout=120)


def s3cmd(s3, tmp_path, *args):
    cfg = tmp_path / "s3cfg"
    if not cfg.exists():
        cfg.write_text(
            "[default]\n"
            f"access_key = {s3.access_key}\n"
            f"secret_key = {s3.secret_key}\n"
            f"host_base = 127.0.0.1:{s3.proxy.port}\n"
            f"host_bucket = 127.0.0.1:{s3.proxy.port}\n"
            "use_https = False\n"
            "signature_v2 = False\n"
            f"bucket_location = {s3.region}\n")
    r = subprocess.run(["s3cmd", "-c", str(cfg), *args], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, f"s3cmd {args}: {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def ours(entries):
    return [e for e in entries if e["headers"].get("user-agent", "").startswith("holdfast/")]


def test_put_get_round_trip_of_binary_objects(s3, proxy, bucket, tmp_path):
    rnd = random.Random(7)
    objects = {
        "empty": b"",
        "small": bytes(range(256)) * 3 + b"\0\r\n\xff",
        "big": rnd.randbytes(9 * MiB + 123),
    }
    for name, data in objects.items():
        src = tmp_path / f"{name}.in"
        src.write_bytes(data)
        r = vol(s3, "put", f"{bucket}/obj/{name}", str(src))
        assert r.returncode == 0, r.stderr
        assert r.stdout == "" and r.stderr == ""
    for name, data in objects.items():
        out = tmp_path / f"{name}.out"
        r = vol(s3, "get", f"{bucket}/obj/{name}", str(out))
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == data, name
        r = vol(s3, "head", f"{bucket}/obj/{name}")
        assert (r.returncode, r.stdout) == (0, f"{len(data)}\n"), r.stderr
    # get to standard output
    r = vol(s3, "get", f"{bucket}/obj/small", "-", binary=True)
    assert r.returncode == 0 and r.stdout == objects["small"]
    # put from standard input
    r = vol(s3, "put", f"{bucket}/obj/stdin", "-", stdin=b"from stdin\n", binary=True)
    assert r.returncode == 0, r.stderr
    assert vol(s3, "get", f"{bucket}/obj/stdin", "-").stdout == "from stdin\n"

    # Every PUT carried the body's SHA-256 and MD5, both signed; the proxy
    # checked them against the body before s3rver saw it.
    puts = [e for e in ours(proxy.entries()) if e["method"] == "PUT"]
    assert len(puts) == 4  # three objects, the one from stdin
    for e in puts:
        assert e["status"] == 200, e
        assert "content-md5" in e["sig"]["signed"], e
        assert "x-amz-content-sha256" in e["sig"]["signed"], e
        assert e["sig"]["payload"] != "UNSIGNED-PAYLOAD"
    big = [e for e in puts if e["target"].endswith("/obj/big")][0]
    assert big["sig"]["payload"] == hashlib.sha256(objects["big"]).hexdigest()


def test_get_refuses_an_object_over_the_limit(s3, proxy, bucket, tmp_path):
    src = tmp_path / "in"
    src.write_bytes(b"x" * 5000)
    assert vol(s3, "put", f"{bucket}/k", str(src)).returncode == 0
    out = tmp_path / "out"
    r = vol(s3, "get", f"{bucket}/k", str(out), "--max-bytes", "4999")
    assert r.returncode == 1
    assert f"s3: GET {bucket}/k: the object is larger than 4999 bytes" in r.stderr
    assert not out.exists()
    r = vol(s3, "get", f"{bucket}/k", str(out), "--max-bytes", "5000")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == b"x" * 5000


KEYS = [
    "plain",
    "with space/and more  spaces ",
    "unicode/é ü 日本語 🎉",
    "deep/a/b/c/d/e/f",
    "specials/a+b=c&d?e#f%g~h",
    "xml/<tag> & \"quote\" 'apos'",
    "punct/!$'()*,;:@[]{}|^`\\",
    "dots/x..y/.hidden/..z",
]


def test_keys_with_spaces_unicode_and_slashes(s3, proxy, bucket, tmp_path):
    for i, key in enumerate(KEYS):
        src = tmp_path / f"in{i}"
        src.write_bytes(key.encode() * (i + 1))
        r = vol(s3, "put", f"{bucket}/{key}", str(src))
        assert r.returncode == 0, (key, r.stderr)
    for i, key in enumerate(KEYS):
        r = vol(s3, "get", f"{bucket}/{key}", "-", binary=True)
        assert r.returncode == 0, (key, r.stderr)
        assert r.stdout == key.encode() * (i + 1), key
    r = vol(s3, "ls", bucket)
    assert r.returncode == 0, r.stderr
    listed = [line.split(" ", 1) for line in r.stdout.splitlines()]
    expect = sorted(KEYS, key=lambda k: k.encode())
    assert [k for _, k in listed] == expect
    sizes = {k: int(n) for n, k in listed}
    for i, key in enumerate(KEYS):
        assert sizes[key] == len(key.encode()) * (i + 1)
    # a prefix with a space and a non-ASCII character
    r = vol(s3, "ls", f"{bucket}/unicode/é")
    assert r.stdout.splitlines() == [f"{len(KEYS[2].encode()) * 3} {KEYS[2]}"]
    # Every request was signed right for these names (the proxy would have
    # answered SignatureDoesNotMatch).
    assert all(e["status"] in (200, 204) for e in proxy.entries())


def test_keys_the_client_refuses(s3, proxy, bucket):
    for key in ("a/./b", "a/../b", "..", "x/."):
        r = vol(s3, "put", f"{bucket}/{key}", "/dev/null")
        assert r.returncode == 1
        assert "segment" in r.stderr, r.stderr
    r = vol(s3, "put", f"{bucket}/" + "k" * 1025, "/dev/null")
    assert r.returncode == 1 and "1 to 1024 bytes" in r.stderr
    r = vol(s3, "head", "bad?bucket/key")
    assert r.returncode == 1 and "bucket name" in r.stderr
    assert proxy.entries() == []  # nothing was sent


def test_ls_follows_continuation_tokens(s3, proxy, bucket):
    items = [(f"many/{i:05d}", b"y" * (i % 17)) for i in range(1003)]
    items += [("other/1", b"z"), ("manx", b"w")]
    s3.put_many(bucket, items)
    proxy.clear()

    r = vol(s3, "ls", f"{bucket}/many/")
    assert r.returncode == 0, r.stderr
    expect = [f"{len(b)} {k}" for k, b in items[:1003]]
    assert r.stdout.splitlines() == expect
    lists = [e for e in ours(proxy.entries()) if e["method"] == "GET"]
    assert len(lists) == 2  # 1000 keys, then 3
    assert "continuation-token=" not in lists[0]["target"]
    assert "continuation-token=" in lists[1]["target"]

    # Small pages: eleven requests, the same listing.
    proxy.clear()
    r = vol(s3, "ls", f"{bucket}/many/", "--max-keys", "100")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == expect
    lists = [e for e in ours(proxy.entries()) if e["method"] == "GET"]
    assert len(lists) == 11
    assert all("max-keys=100" in e["target"] for e in lists)

    # Pages that end inside names that need encoding and entities.
    names = sorted(KEYS, key=lambda k: k.encode())
    s3.put_many(bucket, [("enc/" + k, b"") for k in KEYS])
    r = vol(s3, "ls", f"{bucket}/enc/", "--max-keys", "3")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"0 enc/{k}" for k in names]

    r = vol(s3, "ls", f"{bucket}/nothing-here")
    assert (r.returncode, r.stdout) == (0, "")


def test_head_missing_key_and_rm(s3, proxy, bucket, tmp_path):
    r = vol(s3, "head", f"{bucket}/missing")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip() == f"s3: HEAD {bucket}/missing: 404 Not Found"
    r = vol(s3, "get", f"{bucket}/missing", str(tmp_path / "out"))
    assert r.returncode == 1
    assert f"s3: GET {bucket}/missing: 404 NoSuchKey" in r.stderr
    assert not (tmp_path / "out").exists()

    src = tmp_path / "in"
    src.write_bytes(b"doomed")
    assert vol(s3, "put", f"{bucket}/dir/doomed", str(src)).returncode == 0
    assert vol(s3, "head", f"{bucket}/dir/doomed").stdout == "6\n"
    r = vol(s3, "rm", f"{bucket}/dir/doomed")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert vol(s3, "head", f"{bucket}/dir/doomed").returncode == 1
    assert vol(s3, "ls", bucket).stdout == ""
    # Deleting what is not there succeeds, as S3 answers it.
    r = vol(s3, "rm", f"{bucket}/dir/doomed")
    assert r.returncode == 0, r.stderr


def test_bucket_errors(s3, proxy, bucket):
    r = vol(s3, "mb", bucket)
    assert r.returncode == 1
    assert f"s3: PUT {bucket}: 409 BucketAlreadyExists" in r.stderr
    r = vol(s3, "ls", "hf-no-such-bucket")
    assert r.returncode == 1
    assert "s3: GET hf-no-such-bucket: 404 NoSuchBucket: The specified bucket " \
           "does not exist" in r.stderr
    r = vol(s3, "put", "hf-no-such-bucket/k", "/dev/null")
    assert r.returncode == 1 and "404 NoSuchBucket" in r.stderr


def test_a_wrong_secret_key_is_refused_and_never_shown(s3, proxy, bucket, tmp_path):
    wrong = "wrong-secret-" + "Q" * 20
    env = env_for(s3, secret=wrong)
    src = tmp_path / "in"
    src.write_bytes(b"data")
    for args in (["put", f"{bucket}/k", str(src)], ["ls", bucket],
                 ["head", f"{bucket}/k"], ["get", f"{bucket}/k", "-"]):
        r = vol(s3, *args, env=env)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        if args[0] == "head":  # no body, so no S3 code
            assert "403 Forbidden" in r.stderr
        else:
            assert "403 SignatureDoesNotMatch: The request signature we calculated " \
                   "does not match" in r.stderr, r.stderr
        assert "gave up" not in r.stderr  # a 4xx is not retried
        assert wrong not in r.stderr and wrong not in r.stdout
        assert "Q" * 8 not in r.stderr
    seen = proxy.entries()
    assert len(seen) == 4  # one try each
    assert all(e["refused"] == "SignatureDoesNotMatch" for e in seen)
    # An unknown access key is named by the store, not the secret.
    r = vol(s3, "ls", bucket, env=env_for(s3, access="NOSUCHKEY"))
    assert r.returncode == 1 and "403 InvalidAccessKeyId" in r.stderr


def test_the_secret_is_never_on_the_wire(s3, proxy, bucket, tmp_path):
    src = tmp_path / "in"
    src.write_bytes(b"data")
    for args in (["put", f"{bucket}/k", str(src)], ["get", f"{bucket}/k", "-"],
                 ["head", f"{bucket}/k"], ["ls", bucket], ["rm", f"{bucket}/k"]):
        r = vol(s3, *args)
        assert r.returncode == 0, (args, r.stderr)
        assert s3.secret_key not in r.stdout + r.stderr
    seen = ours(proxy.entries())
    assert len(seen) == 5
    for e in seen:
        assert s3.secret_key not in e["target"]
        assert all(s3.secret_key not in v for v in e["headers"].values()), e


def test_transient_failures_are_retried(s3, proxy, bucket, tmp_path):
    src = tmp_path / "in"
    src.write_bytes(b"retried" * 1000)
    # Two SlowDowns, then the store takes it.
    proxy.fail_next(2, 503, "SlowDown")
    r = vol(s3, "put", f"{bucket}/k", str(src))
    assert r.returncode == 0, r.stderr
    assert [e.get("fault") for e in proxy.entries()] == [(503, "SlowDown")] * 2 + [None]
    # A connection closed without an answer, twice.
    proxy.clear()
    proxy.fail_next(2, "drop", None)
    r = vol(s3, "get", f"{bucket}/k", "-", binary=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"retried" * 1000
    assert len(proxy.entries()) == 3
    # 429 too.
    proxy.clear()
    proxy.fail_next(1, 429, "TooManyRequests")
    assert vol(s3, "head", f"{bucket}/k").stdout == "7000\n"
    # A store that keeps failing: bounded tries, the last answer in the error.
    proxy.clear()
    proxy.fail_next(50, 500, "InternalError")
    r = vol(s3, "--attempts", "3", "get", f"{bucket}/k", "-")
    proxy.clear()
    assert r.returncode == 1
    assert r.stderr.strip() == (f"s3: GET {bucket}/k: 500 InternalError: injected by "
                                "the test proxy; gave up after 3 attempts")


def test_client_errors_are_not_retried(s3, proxy, bucket):
    proxy.fail_next(5, 400, "InvalidArgument")
    r = vol(s3, "ls", bucket)
    proxy.fail_next(0)
    assert r.returncode == 1
    assert r.stderr.strip() == (f"s3: GET {bucket}: 400 InvalidArgument: injected by "
                                "the test proxy")
    assert len(proxy.entries()) == 1


def test_an_unreachable_endpoint_fails_after_bounded_retries(s3, proxy):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        r = vol(s3, "ls", "somebucket", endpoint=f"http://127.0.0.1:{port}")
        assert r.returncode == 1
        assert r.stderr.startswith("s3: GET somebucket: Couldn't connect to server"), r.stderr
        assert r.stderr.strip().endswith("gave up after 4 attempts"), r.stderr
        r = vol(s3, "--attempts", "2", "head", "somebucket/k",
                endpoint=f"http://127.0.0.1:{port}")
        assert r.returncode == 1
        assert r.stderr.strip().endswith("gave up after 2 attempts"), r.stderr


def test_https_with_the_stores_ca(s3, proxy, bucket, tmp_path):
    src = tmp_path / "in"
    src.write_bytes(b"over tls")
    r = vol(s3, "--ca", s3.ca_file, "put", f"{bucket}/tls", str(src),
            endpoint=s3.tls_endpoint)
    assert r.returncode == 0, r.stderr
    r = vol(s3, "--ca", s3.ca_file, "get", f"{bucket}/tls", "-", endpoint=s3.tls_endpoint)
    assert (r.returncode, r.stdout) == (0, "over tls"), r.stderr
    assert len(s3.tls_proxy.entries()) == 2
    # Without the CA the certificate is refused at once, not retried.
    r = vol(s3, "get", f"{bucket}/tls", "-", endpoint=s3.tls_endpoint)
    assert r.returncode == 1
    assert "certificate" in r.stderr and "gave up" not in r.stderr, r.stderr
    assert len(s3.tls_proxy.entries()) == 2


def test_s3cmd_reads_what_holdfast_wrote_and_back(s3, proxy, bucket, tmp_path):
    data = random.Random(11).randbytes(300 * 1024)
    src = tmp_path / "ours"
    src.write_bytes(data)
    key = "cross/from holdfast/é.bin"
    assert vol(s3, "put", f"{bucket}/{key}", str(src)).returncode == 0
    got = tmp_path / "got-by-s3cmd"
    s3cmd(s3, tmp_path, "get", "--force", f"s3://{bucket}/{key}", str(got))
    assert got.read_bytes() == data

    theirs = tmp_path / "theirs"
    theirs.write_bytes(data[::-1])
    key2 = "cross/from s3cmd/ü.bin"
    s3cmd(s3, tmp_path, "put", str(theirs), f"s3://{bucket}/{key2}")
    r = vol(s3, "get", f"{bucket}/{key2}", "-", binary=True)
    assert r.returncode == 0 and r.stdout == data[::-1]
    assert vol(s3, "head", f"{bucket}/{key2}").stdout == f"{len(data)}\n"
    r = vol(s3, "ls", f"{bucket}/cross/")
    assert r.stdout.splitlines() == [f"{len(data)} {key}", f"{len(data)} {key2}"]
    # s3cmd's requests passed the same signature checks as ours.
    others = [e for e in proxy.entries() if e not in ours(proxy.entries())]
    assert others and all(e["status"] == 200 for e in others), others


def test_the_proxy_refuses_what_s3_refuses(s3, proxy, bucket):
    """The checks the other tests rely on can fail."""
    status, body = s3.request("PUT", bucket, "k", b"body")
    assert status == 200, body
    # A body that does not match its signed hash.
    host = f"127.0.0.1:{s3.proxy.port}"
    headers = s3_harness.sign("PUT", host, f"/{bucket}/k", b"body", s3.secret_key)
    c = http.client.HTTPConnection("127.0.0.1", s3.proxy.port, timeout=10)
    c.request("PUT", f"/{bucket}/k", body=b"bodY", headers=headers)
    r = c.getresponse()
    assert (r.status, b"XAmzContentSHA256Mismatch" in r.read()) == (400, True)
    c.close()
    # A query parameter added after signing.
    headers = s3_harness.sign("GET", host, f"/{bucket}?list-type=2", b"", s3.secret_key)
    c = http.client.HTTPConnection("127.0.0.1", s3.proxy.port, timeout=10)
    c.request("GET", f"/{bucket}?list-type=2&prefix=x", headers=headers)
    r = c.getresponse()
    assert (r.status, b"SignatureDoesNotMatch" in r.read()) == (403, True)
    c.close()


def test_usage_errors(s3, proxy):
    env = dict(os.environ)
    env.pop("HOLDFAST_S3_ACCESS_KEY", None)
    env.pop("HOLDFAST_S3_SECRET_KEY", None)
    r = vol(s3, "ls", "b", env=env)
    assert r.returncode == 2
    assert "HOLDFAST_S3_ACCESS_KEY and HOLDFAST_S3_SECRET_KEY" in r.stderr
    r = vol(s3, "frobnicate", "b")
    assert r.returncode == 2 and "unknown command frobnicate" in r.stderr
    r = vol(s3, "put", "bucket-only", "/dev/null")
    assert r.returncode == 2 and "BUCKET/KEY" in r.stderr
    r = vol(s3, "ls", "b", endpoint="ftp://127.0.0.1:1")
    assert r.returncode == 2 and "http:// or https://" in r.stderr
    r = vol(s3, "ls", "b", endpoint="http://user:hunter2@127.0.0.1:1")
    assert r.returncode == 2 and "hunter2" not in r.stderr
    r = subprocess.run([VOLUME_BIN, "s3", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "put BUCKET/KEY FILE" in r.stdout
    assert proxy.entries() == []
