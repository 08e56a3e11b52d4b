"""A real Ceph RADOS Gateway (INFN Cloud's S3 server type) for lakeport's tests.

Usage (any Python 3 with botocore, e.g. the project's .venv):

    python start.py --scratch DIR --port PORT
                    [--oidc-issuer URL --client-id AUD ...] [--memstore-mib N]

One node, everything on 127.0.0.1, data in RAM:
  - one monitor (cephx off, short paxos and tick intervals),
  - one OSD on memstore (pools of size 1),
  - radosgw with the beast frontend on PORT and STS on (`rgw sts key`,
    `rgw s3 auth use sts`).
radosgw is started only once osd.0 is up: started earlier it spends ~5 s
retrying pool creation. No ceph-mgr is needed for S3.

Users (radosgw-admin, with fixed keys):
  tester  the tests' static keys (ACCESS_KEY / SECRET_KEY of tests/support)
  admin   caps `roles=*; oidc-provider=*`, for the IAM calls below

With --oidc-issuer it registers that issuer (IAM CreateOpenIDConnectProvider,
client IDs = every --client-id) and the role
arn:aws:iam:::role/IAMaccess, which trusts web identities of that issuer
whose `aud` is the first client ID (trust condition `<issuer without
scheme>:app_id`), may last up to 12 h and may use all of S3. RGW fetches the
issuer's discovery document and JWKS on every AssumeRoleWithWebIdentity, so
the issuer must be up while tokens are traded, not when this runs.

Prints one line to stdout once S3 answers:

    READY http://127.0.0.1:PORT

and serves until SIGTERM/SIGINT or until its parent dies (the daemons run in
the foreground as its children, in its process group, and are stopped with
it). Logs go to DIR/log; errors to stderr with a non-zero exit.
"""
import argparse
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

TESTER_ACCESS_KEY = "lakeportTestAccessKey"
TESTER_SECRET_KEY = "lakeportTestSecretKey0123456789"
ADMIN_ACCESS_KEY = "lakeportRgwAdminKey"
ADMIN_SECRET_KEY = "lakeportRgwAdminSecret0123456789"
ROLE_NAME = "IAMaccess"
# RGW wants a 16-character key to encrypt its session tokens.
STS_KEY = "lakeportStsKey16"
ROLE_MAX_SECONDS = 43200
READY_TIMEOUT = 90.0
PR_SET_PDEATHSIG = 1

children = []


def log(message):
    print(f"ceph peer: {message}", file=sys.stderr, flush=True)


def die_with_parent():
    """Runs in each daemon before exec: the kernel kills it when we die."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args, **kwargs):
    result = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise SystemExit(f"ceph peer: {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout


def spawn(args, logfile):
    out = open(logfile, "ab")
    child = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=out, preexec_fn=die_with_parent)
    children.append(child)
    return child


def stop(*_):
    for child in reversed(children):
        if child.poll() is None:
            child.kill()
    for child in children:
        child.wait()
    sys.exit(0)


def write_conf(scratch, port, mon_port, memstore_bytes):
    conf = os.path.join(scratch, "ceph.conf")
    fsid = str(uuid.uuid4())
    # Every path under the scratch directory: nothing in /etc/ceph or /var.
    text = f"""[global]
fsid = {fsid}
mon host = v2:127.0.0.1:{mon_port}
public addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
run dir = {scratch}/run
admin socket = {scratch}/run/$name.asok
pid file = {scratch}/run/$name.pid
log file = {scratch}/log/$name.log
crash dir = {scratch}/crash
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
osd crush chooseleaf type = 0
# Short intervals: the cluster is ready in a second or two.
paxos propose interval = 0.01
mon tick interval = 1
osd heartbeat interval = 1
mon osd report timeout = 900

[mon]
mon data = {scratch}/mon/$cluster-$id
mon cluster log file = {scratch}/log/cluster.log

[osd]
osd data = {scratch}/osd/$cluster-$id
osd objectstore = memstore
memstore device bytes = {memstore_bytes}
osd max object size = {memstore_bytes}
osd journal size = 0

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:{port}
rgw sts key = {STS_KEY}
rgw s3 auth use sts = true
rgw thread pool size = 64
# radosgw defaults to "secure" towards the monitor, which needs cephx.
ms mon client mode = crc
rgw dns name = 127.0.0.1
rgw enable usage log = false
"""
    with open(conf, "w") as f:
        f.write(text)
    return conf, fsid


def ceph_json(conf, *args):
    return json.loads(run(["ceph", "-c", conf, "--connect-timeout", "10", *args, "--format", "json"]))


def wait_until(what, check, timeout):
    deadline = time.monotonic() + timeout
    while True:
        for child in children:
            if child.poll() is not None:
                raise SystemExit(f"ceph peer: {child.args[0]} exited ({child.returncode}) while waiting for {what}")
        try:
            if check():
                return
        except (OSError, SystemExit, ValueError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"ceph peer: timed out waiting for {what}")
        time.sleep(0.1)


def s3_answers(endpoint):
    try:
        with urllib.request.urlopen(endpoint + "/", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer (anonymous ListBuckets may be refused)


def start_cluster(scratch, port, memstore_bytes):
    for sub in ("run", "log", "crash", "mon/ceph-a", "osd/ceph-0"):
        os.makedirs(os.path.join(scratch, sub), exist_ok=True)
    mon_port = free_port()
    conf, fsid = write_conf(scratch, port, mon_port, memstore_bytes)

    monmap = os.path.join(scratch, "monmap")
    run(["monmaptool", "--create", "--fsid", fsid, "--addv", "a", f"[v2:127.0.0.1:{mon_port}]", monmap])
    run(["ceph-mon", "-c", conf, "--mkfs", "-i", "a", "--monmap", monmap])
    spawn(["ceph-mon", "-f", "-c", conf, "-i", "a"], os.path.join(scratch, "log", "mon.out"))
    wait_until("the monitor", lambda: ceph_json(conf, "mon", "stat") is not None, 30)

    osd_uuid = str(uuid.uuid4())
    osd_id = run(["ceph", "-c", conf, "osd", "new", osd_uuid]).strip()
    if osd_id != "0":
        raise SystemExit(f"ceph peer: expected osd.0, got osd.{osd_id}")
    run(["ceph-osd", "-c", conf, "-i", "0", "--mkfs", "--osd-uuid", osd_uuid])
    spawn(["ceph-osd", "-f", "-c", conf, "-i", "0"], os.path.join(scratch, "log", "osd.out"))
    wait_until("osd.0", lambda: ceph_json(conf, "osd", "stat")["num_up_osds"] == 1, 30)

    spawn(["radosgw", "-f", "-c", conf, "-n", "client.rgw"], os.path.join(scratch, "log", "rgw.out"))
    endpoint = f"http://127.0.0.1:{port}"
    wait_until("radosgw", lambda: s3_answers(endpoint), READY_TIMEOUT)
    return conf, endpoint


def create_users(conf):
    run(["radosgw-admin", "-c", conf, "user", "create", "--uid", "tester", "--display-name", "lakeport tests",
         "--access-key", TESTER_ACCESS_KEY, "--secret-key", TESTER_SECRET_KEY])
    run(["radosgw-admin", "-c", conf, "user", "create", "--uid", "admin", "--display-name", "IAM admin",
         "--access-key", ADMIN_ACCESS_KEY, "--secret-key", ADMIN_SECRET_KEY])
    run(["radosgw-admin", "-c", conf, "caps", "add", "--uid", "admin", "--caps", "roles=*;oidc-provider=*"])


def iam_call(endpoint, action, params):
    """One IAM call signed by botocore as the admin user; returns the body."""
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    import urllib.parse

    body = urllib.parse.urlencode({"Action": action, "Version": "2010-05-08", **params}, quote_via=urllib.parse.quote)
    request = botocore.awsrequest.AWSRequest(
        method="POST", url=endpoint + "/", data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    credentials = botocore.credentials.Credentials(ADMIN_ACCESS_KEY, ADMIN_SECRET_KEY)
    botocore.auth.SigV4Auth(credentials, "iam", "default").add_auth(request)
    prepared = request.prepare()
    http = urllib.request.Request(prepared.url, data=body.encode(), headers=dict(prepared.headers), method="POST")
    try:
        with urllib.request.urlopen(http, timeout=30) as answer:
            return answer.read().decode()
    except urllib.error.HTTPError as e:
        raise SystemExit(f"ceph peer: IAM {action} failed: HTTP {e.code}: {e.read().decode(errors='replace')}")


def register_issuer(endpoint, issuer, client_ids):
    issuer = issuer.rstrip("/")
    params = {"Url": issuer, "ThumbprintList.member.1": "0" * 40}
    for i, client_id in enumerate(client_ids, 1):
        params[f"ClientIDList.member.{i}"] = client_id
    iam_call(endpoint, "CreateOpenIDConnectProvider", params)
    host = issuer.split("://", 1)[-1]
    provider_arn = f"arn:aws:iam:::oidc-provider/{host}"
    # Compact JSON: RGW's IAM refuses policies whose spaces arrive form-encoded.
    trust = {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": [provider_arn]},
            "Action": ["sts:AssumeRoleWithWebIdentity"],
            "Condition": {"StringEquals": {f"{host}:app_id": client_ids[0]}},
        }],
    }
    compact = lambda doc: json.dumps(doc, separators=(",", ":"))
    iam_call(endpoint, "CreateRole", {"RoleName": ROLE_NAME, "Path": "/", "AssumeRolePolicyDocument": compact(trust),
                                      "MaxSessionDuration": str(ROLE_MAX_SECONDS)})
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::*"]}]}
    iam_call(endpoint, "PutRolePolicy", {"RoleName": ROLE_NAME, "PolicyName": "s3-all", "PolicyDocument": compact(policy)})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scratch", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--oidc-issuer")
    parser.add_argument("--client-id", action="append", default=[])
    parser.add_argument("--memstore-mib", type=int, default=1024)
    args = parser.parse_args()
    if args.oidc_issuer and not args.client_id:
        parser.error("--oidc-issuer needs at least one --client-id (the tokens' audience)")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    scratch = os.path.abspath(args.scratch)
    started = time.monotonic()
    try:
        conf, endpoint = start_cluster(scratch, args.port, args.memstore_mib * 1024 * 1024)
        create_users(conf)
        if args.oidc_issuer:
            register_issuer(endpoint, args.oidc_issuer, args.client_id)
    except BaseException:
        for child in children:
            if child.poll() is None:
                child.kill()
        raise
    log(f"ready in {time.monotonic() - started:.1f} s")
    print(f"READY {endpoint}", flush=True)
    while True:
        for child in children:
            if child.poll() is not None:
                log(f"{child.args[0]} exited ({child.returncode}); stopping")
                stop()
        time.sleep(0.5)


if __name__ == "__main__":
    main()
