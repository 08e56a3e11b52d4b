#!/bin/sh
# Uploads a CI job's artifacts to S3 with temporary keys from STS for the
# job's own OIDC token: no long-lived S3 keys in the CI's secrets, no token
# store, no passphrase. Run by examples/ci/gitlab-ci.yml and
# examples/ci/github-workflow.yml; `lakeport` must be on PATH.
#
#   upload-artifacts.sh FILE...
#
# The job's variables:
#   LAKEPORT_STS_ENDPOINT    STS service URL                      (required)
#   LAKEPORT_ROLE_ARN        role to assume                       (required)
#   LAKEPORT_S3_ENDPOINT     S3 service URL                       (required)
#   LAKEPORT_DESTINATION     s3://BUCKET/PREFIX for the files     (required)
#   LAKEPORT_REGION          signing region (default: default, as Ceph RGW)
#   LAKEPORT_GRANT           token (default: GitLab id_tokens) or github-actions
#   LAKEPORT_TOKEN_VARIABLE  grant token: the variable holding the job's token
#                            (default: LAKEPORT_ID_TOKEN)
#   LAKEPORT_AUDIENCE        grant github-actions: the audience to ask for
#                            (default: object)
set -eu

: "${LAKEPORT_STS_ENDPOINT:?set it to the STS service URL}"
: "${LAKEPORT_ROLE_ARN:?set it to the role to assume}"
: "${LAKEPORT_S3_ENDPOINT:?set it to the S3 service URL}"
: "${LAKEPORT_DESTINATION:?set it to s3://BUCKET/PREFIX}"
[ $# -gt 0 ] || { echo "usage: $0 FILE..." >&2; exit 2; }

grant="${LAKEPORT_GRANT:-token}"
case "$grant" in
    token) source_line="token_env = \"${LAKEPORT_TOKEN_VARIABLE:-LAKEPORT_ID_TOKEN}\"" ;;
    github-actions) source_line="audience = \"${LAKEPORT_AUDIENCE:-object}\"" ;;
    *) echo "LAKEPORT_GRANT must be token or github-actions, not '$grant'" >&2; exit 2 ;;
esac

# A profile for this job only, outside the checkout.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cat >"$scratch/lakeport.toml" <<PROFILE
[profiles.ci]
grant = "$grant"
$source_line
sts_endpoint = "$LAKEPORT_STS_ENDPOINT"
role_arn = "$LAKEPORT_ROLE_ARN"
session_name = "ci-upload"
region = "${LAKEPORT_REGION:-default}"
s3_endpoint = "$LAKEPORT_S3_ENDPOINT"
addressing_style = "path"
PROFILE
export LAKEPORT_CONFIG="$scratch/lakeport.toml" LAKEPORT_PROFILE=ci

destination="${LAKEPORT_DESTINATION%/}"
for file in "$@"; do
    lakeport s3 cp "$file" "$destination/$(basename "$file")"
done
