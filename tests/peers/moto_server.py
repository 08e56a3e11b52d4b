"""moto's server (STS, IAM, S3 on one port) as lakeport's tests run it.

Usage: python moto_server.py -H 127.0.0.1 -p PORT   (moto_server's arguments)

Two settings on top of plain `moto_server`, both in this process:
  - Requests are authenticated from the first one (INITIAL_NO_AUTH_ACTION_COUNT
    = 0): a wrong secret, a missing session token or a bad signature is
    refused, so a test that passes proves the credentials and signatures.
    AssumeRoleWithWebIdentity stays unsigned, as on AWS and Ceph RGW (moto
    5.2.5 would demand an Authorization header for it too).
  - LAKEPORT_MOTO_ROLES (comma-separated names) are created before serving,
    each with a policy allowing s3:*, so credentials of an assumed role may
    use S3 and those of any other role may not.
"""
import json
import os
import sys

os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"

from moto.core import DEFAULT_ACCOUNT_ID  # noqa: E402
from moto.core.authorization import ActionAuthenticatorMixin  # noqa: E402
from moto.iam.models import iam_backends  # noqa: E402
from moto.server import main  # noqa: E402

UNSIGNED_ACTIONS = {"AssumeRoleWithWebIdentity"}
_authorize = ActionAuthenticatorMixin._authenticate_and_authorize_normal_action


def authorize(self, resource="*"):
    if self._get_action() in UNSIGNED_ACTIONS:
        return None
    return _authorize(self, resource)


ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = authorize

TRUST = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Federated": "oidc"}, "Action": "sts:AssumeRoleWithWebIdentity"}],
})
S3_ALL = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})

iam = iam_backends[DEFAULT_ACCOUNT_ID]["global"]
for name in filter(None, os.environ.get("LAKEPORT_MOTO_ROLES", "").split(",")):
    iam.create_role(name, TRUST, "/", None, "", [], None)
    iam.put_role_policy(name, "s3-all", S3_ALL)

sys.exit(main(sys.argv[1:]))
