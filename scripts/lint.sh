#!/usr/bin/env bash
# scripts/lint.sh: the checks `make lint` runs, and CI with it.
#   - gofmt leaves every file as it is;
#   - go vet finds nothing;
#   - go mod tidy would change neither go.mod nor go.sum;
#   - no module that our code imports is marked `// indirect` in go.mod.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GO="${GO:-go}"
failed=0

unformatted="$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*'))"
if [[ -n "$unformatted" ]]; then
	echo "lint: gofmt needed on:"; echo "$unformatted"; failed=1
fi

"$GO" vet ./... || failed=1

if ! diff="$("$GO" mod tidy -diff 2>&1)"; then
	echo "lint: go mod tidy would change go.mod or go.sum; run 'go mod tidy' and commit:"
	echo "$diff"; failed=1
fi

# The modules that provide a package our code (or its tests) imports directly.
imports="$("$GO" list -f '{{join .Imports "\n"}}
{{join .TestImports "\n"}}
{{join .XTestImports "\n"}}' ./... | grep '\.' | sort -u)"
# shellcheck disable=SC2086 # one argument per import path
direct="$("$GO" list -f '{{with .Module}}{{.Path}}{{end}}' $imports | sort -u)"
while read -r mod; do
	if grep -qxF "$mod" <<<"$direct"; then
		echo "lint: go.mod marks $mod // indirect, but the code imports it"; failed=1
	fi
done < <(awk '/\/\/ indirect/ && $1 != "//" {print $1}' go.mod)

if ((failed)); then
	exit 1
fi
echo "lint: ok"
