#!/usr/bin/env bash
# scripts/vulncheck.sh: `make vulncheck`, and CI with it. Runs govulncheck on ./...
# against a Go vulnerability database built here, offline from vuln.go.dev.
#
# Where the database comes from. This machine (and CI) reach package registries only,
# so govulncheck's default database is out of reach. The Go vulnerability database's
# source, golang.org/x/vulndb, is a Go module, and the module proxy serves it: its
# data/osv/*.json holds every OSV entry, and its cmd/indexdb is the upstream tool that
# turns a folder of OSV JSON files into a v1 database (index/db.json, index/modules.json,
# index/vulns.json, ID/<id>.json, each with a .gz beside it) -- the layout govulncheck's
# `-db file://DIR` reads. So no conversion of our own is involved: we
#   1. `go mod download` golang.org/x/vulndb@$VULNDB_VERSION into the module cache,
#   2. `go run golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION -vulns <its data/osv>`
#      into .cache/vulndb/$VULNDB_VERSION (built in a temporary folder and renamed, so
#      an interrupted build is never taken for a database; later runs reuse it),
#   3. run govulncheck $GOVULNCHECK_VERSION (installed with `go install ...@version`
#      into .cache/vulncheck/bin) with -db file://.cache/vulndb/$VULNDB_VERSION.
# The database is as new as the pinned vulndb version: bump VULNDB_VERSION (see
# `go list -m -versions golang.org/x/vulndb`, or `go list -m golang.org/x/vulndb@latest`)
# to pick up newer reports. The entries' "modified" times read 0001-01-01 because
# upstream derives them from git history, which a module zip does not carry; govulncheck
# only prints that time ("DB updated"), it does not match on it.
#
# What fails. govulncheck finds a vulnerability "called" when a path from our code
# reaches a vulnerable symbol. This script fails (exit 1) when a called vulnerability is
# in a module that go.mod requires: those we fix here, by bumping the module to its
# fixed version. Called vulnerabilities in the Go standard library are printed, with
# the Go release that fixes them, but do not fail the run: they are fixed by the Go
# toolchain on the machine (go.mod's `go` line is the minimum, not the toolchain used),
# which this repository does not install. Set VULNCHECK_STDLIB=fail to make them fail
# too. Vulnerabilities in modules or packages we import but whose vulnerable code we
# never call are listed by govulncheck's summary and never fail.
#
# Usage: scripts/vulncheck.sh [MODULE_DIR]. MODULE_DIR defaults to this repository;
# pointing it at another module (say, one pinning golang.org/x/text v0.3.0 and calling
# language.Parse) shows the check fails on a called vulnerability in a dependency.
#
# Output: govulncheck's own text report, then one line per called vulnerability and the
# verdict. The JSON stream it was rendered from stays in .cache/vulncheck/report.json.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
target="$(cd "${1:-.}" && pwd)"
GO="${GO:-go}"
VULNDB_VERSION="v0.0.0-20261105234957-e22db6528018"
GOVULNCHECK_VERSION="v1.9.0"
db="$root/.cache/vulndb/$VULNDB_VERSION"
work="$root/.cache/vulncheck"
bin="$work/bin/$GOVULNCHECK_VERSION"
mkdir -p "$work" "$bin" "$root/.cache/vulndb"

if [[ ! -f "$db/index/modules.json" ]]; then
	echo "vulncheck: building the vulnerability database from golang.org/x/vulndb@$VULNDB_VERSION"
	src="$("$GO" mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
	if [[ -z "$src" || ! -d "$src/data/osv" ]]; then
		echo "vulncheck: golang.org/x/vulndb@$VULNDB_VERSION has no data/osv (at '$src')" >&2
		exit 2
	fi
	tmp="$(mktemp -d "$root/.cache/vulndb/.build.XXXXXX")"
	trap 'rm -rf "$tmp"' EXIT
	# The module's go.mod is what `go run pkg@version` builds with, not ours.
	(cd "$tmp" && "$GO" run "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION" \
		-vulns "$src/data/osv" -out "$tmp/db")
	rm -rf "$db"
	mv "$tmp/db" "$db"
	echo "vulncheck: $(ls "$db/ID" | grep -c '\.json$') entries in $db"
fi

if [[ ! -x "$bin/govulncheck" ]]; then
	GOBIN="$bin" "$GO" install "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION"
fi

# govulncheck finds the Go version (and so the stdlib's) from the `go` on PATH.
gobin="$(dirname "$(command -v "$GO")")"
export PATH="$gobin:$PATH"

# -format json exits 0 whatever it finds; a non-zero exit here is a failure to scan.
"$bin/govulncheck" -C "$target" -db "file://$db" -format json ./... >"$work/report.json"
# The same stream rendered as govulncheck's usual text (its exit code says only
# whether anything was found, which the policy below decides instead).
"$bin/govulncheck" -mode convert <"$work/report.json" || true
echo

VULNCHECK_STDLIB="${VULNCHECK_STDLIB:-warn}" python3 - "$work/report.json" <<'EOF'
import json, os, sys

# The report is a stream of JSON objects, not an array.
dec, text, pos, msgs = json.JSONDecoder(), open(sys.argv[1]).read(), 0, []
while True:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    if pos >= len(text):
        break
    obj, pos = dec.raw_decode(text, pos)
    msgs.append(obj)

summaries = {m["osv"]["id"]: m["osv"].get("summary", "") for m in msgs if "osv" in m}
called = {}  # (osv, module) -> (found, fixed)
for m in msgs:
    f = m.get("finding")
    # A symbol-level finding (one whose trace starts at a function) is a called one.
    if not f or not f.get("trace") or not f["trace"][0].get("function"):
        continue
    top = f["trace"][0]
    called[(f["osv"], top["module"])] = (top.get("version", ""), f.get("fixed_version", ""))

std_fails = os.environ["VULNCHECK_STDLIB"] == "fail"
failing = 0
for (osv, mod), (found, fixed) in sorted(called.items()):
    is_std = mod == "stdlib"
    fails = std_fails or not is_std
    failing += fails
    what = "Go standard library" if is_std else mod
    print(f"vulncheck: {'FAIL' if fails else 'warn'} {osv} in {what}@{found}, "
          f"fixed in {fixed or 'no release yet'}: {summaries.get(osv, '')}")
std = sum(1 for (_, mod) in called if mod == "stdlib")
if failing:
    print(f"vulncheck: {failing} called vulnerabilities fail the check "
          "(bump the module to its fixed version)")
    sys.exit(1)
if std:
    print(f"vulncheck: ok for required modules; {std} called vulnerabilities in the Go "
          "standard library are fixed by a newer Go toolchain (VULNCHECK_STDLIB=fail "
          "makes them fail)")
else:
    print("vulncheck: ok, no called vulnerabilities")
EOF
