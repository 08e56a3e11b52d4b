"""A real Rucio server for lakeport's tests: SQLite, no memcached, gunicorn on 127.0.0.1.

Usage (with the Python of the venv that has requirements.txt installed):

    python start.py --scratch DIR --port PORT --s3 http://127.0.0.1:S3PORT

In DIR it writes rucio.cfg (the server's), alembic.ini, rucio.db, the client
configurations client-root.cfg and client-jdoe.cfg and server.log (gunicorn's
and Rucio's output). It builds the schema, bootstraps the VO and the root
account, then fills the database in this process through Rucio's gateway
layer (rucio.gateway.*, what the REST API calls, issuer root):

  accounts   root (SERVICE, userpass root / rucio-root-secret)
             jdoe (USER, userpass jdoe / jdoe-secret)
  scopes     user.root, test (root); user.jdoe (jdoe)
  RSEs       SITE-A, SITE-B: deterministic DISK, attributes type=DISK,
             site=A|B, and two protocols each on the S3 endpoint:
               s3   (read/write/delete priority 1), prefix /rucio-site-a/
               http or https, the S3 endpoint's own scheme (priority 2)
             so a PFN is s3://HOST:PORT/rucio-site-a/<scope path>/<hash>/<name>
             (bucket rucio-site-a / rucio-site-b: the tests create them)
  distances  SITE-A <-> SITE-B (1, both ways)
  limits     root and jdoe: 1 TB local account limit on both RSEs

With --oidc-issuer URL it also accepts that OpenID provider's JWT access
tokens as X-Rucio-Auth-Token (as ESCAPE/CMS deployments do): it writes
idpsecrets.json, an [oidc] section (expected_audience, expected_scope) and
gives jdoe the identity "SUB=<sub>, ISS=<issuer>" (type OIDC) for each
--oidc-subject (default: service, the subject of the client-credentials
tokens of tests/peers/oidc-provider.mjs's client "service").

Then it starts gunicorn (rucio.web.rest.flaskapi.v1.main:application, one
sync worker: SQLite takes one writer at a time), waits
until GET /ping answers and prints one line to stdout:

    READY http://127.0.0.1:PORT

and serves until it gets SIGTERM or SIGINT (or its parent kills it: gunicorn
is stopped with it). Nothing else goes to stdout; errors go to stderr and
exit non-zero.
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
import urllib.parse
import urllib.request

ROOT_PASSWORD = "rucio-root-secret"
JDOE_PASSWORD = "jdoe-secret"
RSES = ("SITE-A", "SITE-B")
ACCOUNT_LIMIT_BYTES = 10**12
WSGI_APP = "rucio.web.rest.flaskapi.v1.main:application"
OIDC_IDP = "test-idp"


def log(msg):
    print(f"rucio-peer: {msg}", file=sys.stderr, flush=True)


def write_configs(scratch, port, loglevel, oidc=None):
    db = os.path.join(scratch, "rucio.db")
    alembic_ini = os.path.join(scratch, "alembic.ini")
    import importlib.util
    spec = importlib.util.find_spec("rucio")
    migrate_repo = os.path.join(os.path.dirname(spec.origin), "db", "sqla", "migrate_repo")
    with open(alembic_ini, "w") as f:
        f.write(f"""[alembic]
script_location = {migrate_repo}
sqlalchemy.url = sqlite:///{db}

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARN
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
""")
    # [cache] url: a port where nothing listens. rucio.common.cache tries to
    # reach memcached once at import, gets ECONNREFUSED and falls back to
    # dogpile's null backend (no caching at all).
    with open(os.path.join(scratch, "rucio.cfg"), "w") as f:
        f.write(f"""[common]
loglevel = {loglevel}

[database]
default = sqlite:///{db}

[cache]
url = 127.0.0.1:1

[alembic]
cfg = {alembic_ini}

[bootstrap]
userpass_identity = root
userpass_pwd = {ROOT_PASSWORD}
userpass_email = root@localhost
x509_identity =
x509_email =
gss_identity =
gss_email =
ssh_identity =
ssh_email =

[policy]
permission = generic
schema = generic
lfn2pfn_algorithm_default = hash
support = lakeport tests
support_rucio = lakeport tests

[monitor]
enable_metrics = False
""")
        if oidc:
            # Rucio reads these at import (rucio.core.oidc): the issuer's
            # discovery document and JWKS are fetched at the first JWT it
            # has to validate, not at start-up.
            f.write(f"""
[oidc]
idpsecrets = {os.path.join(scratch, "idpsecrets.json")}
admin_issuer = {OIDC_IDP}
expected_audience = {oidc.audience}
expected_scope = {oidc.scope}
""")
    if oidc:
        write_idpsecrets(scratch, port, oidc)
    for account, password in (("root", ROOT_PASSWORD), ("jdoe", JDOE_PASSWORD)):
        with open(os.path.join(scratch, f"client-{account}.cfg"), "w") as f:
            f.write(f"""[client]
rucio_host = http://127.0.0.1:{port}
auth_host = http://127.0.0.1:{port}
auth_type = userpass
username = {account}
password = {password}
account = {account}
request_retries = 1
auth_token_file_path = {scratch}/tokens/{account}.token

[policy]
support = lakeport tests
""")


def write_idpsecrets(scratch, port, oidc):
    # The format Rucio's rucio.core.oidc reads: one entry per provider, keyed
    # by a name ([oidc] admin_issuer picks one); "issuer" must be exactly the
    # tokens' "iss" (no trailing slash added or removed). "SCIM" is required
    # too: without it Rucio loads no provider at all. The client is only
    # used by Rucio's own OIDC flows (and introspection of tokens without
    # "aud" or "scope"), not to validate a JWT.
    base = f"http://127.0.0.1:{port}"
    client = {"client_id": oidc.client_id, "client_secret": oidc.client_secret}
    secrets = {OIDC_IDP: {
        "issuer": oidc.issuer,
        **client,
        "redirect_uris": [f"{base}/auth/oidc_token", f"{base}/auth/oidc_code"],
        "SCIM": dict(client),
    }}
    path = os.path.join(scratch, "idpsecrets.json")
    with open(path, "w") as f:
        json.dump(secrets, f, indent=2)
        f.write("\n")
    os.chmod(path, 0o600)


def check_oidc_issuer(issuer):
    # Rucio looks the provider up at the first token, keyed by the tokens'
    # "iss": an issuer string that differs from the provider's own would
    # only show as 401s later, so refuse it now. A provider that is not
    # up yet is fine (Rucio retries at every token until it answers).
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            announced = json.loads(r.read()).get("issuer")
    except (OSError, ValueError) as e:
        log(f"note: {url} does not answer yet ({e}); Rucio fetches it at the first token")
        return
    if announced != issuer:
        sys.exit(f"rucio-peer: --oidc-issuer {issuer!r} is not the provider's issuer {announced!r}")


def bootstrap_and_populate(s3_url, oidc=None):
    # Imported here: RUCIO_CONFIG must be set first (rucio reads its
    # configuration at import time).
    from rucio.db.sqla.session import get_engine
    from rucio.db.sqla.util import build_database, create_base_vo, create_root_account
    from rucio.gateway import account as gw_account
    from rucio.gateway import account_limit as gw_limit
    from rucio.gateway import identity as gw_identity
    from rucio.gateway import rse as gw_rse
    from rucio.gateway import scope as gw_scope

    build_database()
    with get_engine().connect() as conn:
        # Readers (a daemon run with --run-once, more workers) then do not
        # block the writer.
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    create_base_vo()
    create_root_account()

    issuer = "root"
    gw_account.add_account("jdoe", "USER", "jdoe@localhost", issuer=issuer)
    gw_identity.add_account_identity("jdoe", "USERPASS", "jdoe", "jdoe@localhost", issuer=issuer,
                                     default=True, password=JDOE_PASSWORD)
    gw_scope.add_scope("user.root", "root", issuer=issuer)
    gw_scope.add_scope("test", "root", issuer=issuer)
    gw_scope.add_scope("user.jdoe", "jdoe", issuer=issuer)

    s3 = urllib.parse.urlsplit(s3_url)
    host = s3.hostname
    port = s3.port or (443 if s3.scheme == "https" else 80)
    for rse in RSES:
        gw_rse.add_rse(rse, issuer=issuer, deterministic=True, rse_type="DISK")
        site = rse.split("-", 1)[1]
        gw_rse.add_rse_attribute(rse, "type", "DISK", issuer=issuer)
        gw_rse.add_rse_attribute(rse, "site", site, issuer=issuer)
        bucket = "rucio-" + rse.lower()
        for scheme, priority in (("s3", 1), (s3.scheme, 2)):
            gw_rse.add_protocol(rse, issuer=issuer, data={
                "scheme": scheme,
                "hostname": host,
                "port": port,
                "prefix": f"/{bucket}/",
                "impl": "rucio.rse.protocols.gfal.NoRename",
                "domains": {
                    "lan": {"read": priority, "write": priority, "delete": priority},
                    "wan": {"read": priority, "write": priority, "delete": priority,
                            "third_party_copy_read": priority, "third_party_copy_write": priority},
                },
            })
        for account in ("root", "jdoe"):
            gw_limit.set_local_account_limit(account, rse, ACCOUNT_LIMIT_BYTES, issuer=issuer)
    gw_rse.add_distance(RSES[0], RSES[1], issuer=issuer, distance=1, bidirectional=True)

    if oidc:
        # The identity string Rucio builds from a token (oidc_identity_string
        # in rucio.core.oidc): "SUB=<sub>, ISS=<iss>".
        for sub in oidc.subjects:
            gw_identity.add_account_identity(f"SUB={sub}, ISS={oidc.issuer}", "OIDC", "jdoe", "jdoe@localhost",
                                             issuer=issuer, default=True)


def die_with_parent():
    # PR_SET_PDEATHSIG: gunicorn's arbiter gets SIGTERM when this process
    # dies, even by SIGKILL, so a killed start.py leaves no server behind.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:
        pass


def ping(base):
    try:
        with urllib.request.urlopen(base + "/ping", timeout=2) as r:
            return r.status == 200 and "version" in json.loads(r.read())
    except (OSError, ValueError):
        return False


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scratch", required=True, help="empty or new directory for the database, configs and logs")
    p.add_argument("--port", type=int, required=True, help="port on 127.0.0.1 to serve on")
    p.add_argument("--s3", required=True, help="S3 endpoint URL the RSE protocols point at, e.g. http://127.0.0.1:9000")
    p.add_argument("--workers", type=int, default=1,
                   help="gunicorn sync workers (default 1: with more, concurrent writes can fail with SQLite's \"database is locked\")")
    p.add_argument("--loglevel", default="INFO", help="Rucio's log level (default INFO)")
    p.add_argument("--timeout", type=float, default=120, help="seconds to wait for /ping (default 120)")
    p.add_argument("--oidc-issuer", metavar="URL",
                   help="accept JWT access tokens of this OpenID provider (its exact issuer, e.g. http://127.0.0.1:PORT)")
    p.add_argument("--oidc-audience", default="rucio", help="[oidc] expected_audience, space-separated: all must be in a token's aud (default rucio)")
    p.add_argument("--oidc-scope", default="rucio", help="[oidc] expected_scope, space-separated: all must be in a token's scope (default rucio)")
    p.add_argument("--oidc-subject", action="append", metavar="SUB",
                   help="token subject mapped to account jdoe; repeatable (default: service)")
    p.add_argument("--oidc-client-id", default="service", help="Rucio's client at the provider, for idpsecrets.json (default service)")
    p.add_argument("--oidc-client-secret", default="service-secret", help="its secret (default service-secret)")
    args = p.parse_args()
    oidc = None
    if args.oidc_issuer:
        oidc = argparse.Namespace(issuer=args.oidc_issuer, audience=args.oidc_audience, scope=args.oidc_scope,
                                  subjects=args.oidc_subject or ["service"],
                                  client_id=args.oidc_client_id, client_secret=args.oidc_client_secret)
    elif args.oidc_subject:
        p.error("--oidc-subject needs --oidc-issuer")

    scratch = os.path.abspath(args.scratch)
    os.makedirs(os.path.join(scratch, "tokens"), exist_ok=True)
    if os.path.exists(os.path.join(scratch, "rucio.db")):
        sys.exit(f"rucio-peer: {scratch}/rucio.db exists: give a fresh scratch directory")

    # gunicorn retries a busy port for seconds while /ping would be answered
    # by whatever holds it: refuse at once instead.
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", args.port))
        except OSError as e:
            sys.exit(f"rucio-peer: cannot use 127.0.0.1:{args.port}: {e}")

    if oidc:
        check_oidc_issuer(oidc.issuer)
    write_configs(scratch, args.port, args.loglevel, oidc)
    # Rucio finds its configuration through RUCIO_CONFIG, in this process
    # and in gunicorn's.
    os.environ["RUCIO_CONFIG"] = os.path.join(scratch, "rucio.cfg")
    os.environ.pop("RUCIO_CLIENT_MODE", None)
    env = dict(os.environ)

    t0 = time.monotonic()
    bootstrap_and_populate(args.s3, oidc)
    t1 = time.monotonic()
    log(f"database ready in {t1 - t0:.1f}s")

    base = f"http://127.0.0.1:{args.port}"
    server_log = open(os.path.join(scratch, "server.log"), "ab")
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn",
         "--bind", f"127.0.0.1:{args.port}",
         "--workers", str(args.workers),
         "--worker-class", "sync",
         "--timeout", "120",
         "--no-control-socket",
         "--access-logfile", "-",
         "--error-logfile", "-",
         WSGI_APP],
        env=env, cwd=scratch, stdin=subprocess.DEVNULL, stdout=server_log, stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent)

    # The handlers only pass the signal on: the main loop below sees gunicorn
    # exit (waiting for it inside a handler would deadlock with Popen.wait).
    stopping = []

    def stop(signum, _frame):
        if not stopping:
            stopping.append((signum, time.monotonic()))
            if gunicorn.poll() is None:
                gunicorn.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    deadline = time.monotonic() + args.timeout
    while not stopping and not ping(base):
        if gunicorn.poll() is not None:
            sys.exit(f"rucio-peer: gunicorn exited with {gunicorn.returncode}; see {scratch}/server.log")
        if time.monotonic() > deadline:
            gunicorn.kill()
            gunicorn.wait()
            sys.exit(f"rucio-peer: no answer on {base}/ping after {args.timeout}s; see {scratch}/server.log")
        time.sleep(0.1)
    if not stopping:
        log(f"gunicorn answered /ping {time.monotonic() - t1:.1f}s after it started")
        print(f"READY {base}", flush=True)

    while gunicorn.poll() is None:
        if stopping and time.monotonic() - stopping[0][1] > 20:
            gunicorn.kill()
        time.sleep(0.2)
    if stopping:
        sys.exit(128 + stopping[0][0])
    sys.exit(f"rucio-peer: gunicorn exited with {gunicorn.returncode}; see {scratch}/server.log")


if __name__ == "__main__":
    main()
