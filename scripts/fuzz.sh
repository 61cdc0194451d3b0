#!/bin/sh
# Runs every fuzz target of the module for $FUZZTIME each, one at a time
# (Go's fuzzer takes one target per run).
set -eu
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}
for pkg in $($GO list ./...); do
	for target in $($GO test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "fuzz: $pkg $target ($FUZZTIME)"
		$GO test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"
	done
done
