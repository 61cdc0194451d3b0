#!/bin/sh
# Installs the Debian packages named in $DEB_PACKAGES that are not installed
# yet, as root or through sudo, then checks that every command in $TOOLS
# (which no Debian package provides) is on the PATH, failing with what to
# install when one is not. Prints nothing and changes nothing when all of
# them are present.
set -eu
tools() {
	absent=""
	for c in ${TOOLS:-}; do
		command -v "$c" >/dev/null 2>&1 || absent="$absent $c"
	done
	[ -z "$absent" ] && return 0
	echo "deps: missing command(s):$absent" >&2
	case "$absent" in *kubectl*)
		echo "deps: kubectl (1.27 or later, kustomize built in) renders the manifests in deploy/ for their tests;" >&2
		echo "deps: Debian has no package of it: install the package kubectl from the Kubernetes or Google Cloud apt repository, or put a kubectl binary on the PATH" >&2
	esac
	exit 1
}
missing=""
for p in $DEB_PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	tools
	exit 0
fi
echo "deps: installing$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "deps: need root or sudo to install$missing" >&2; exit 1; }
	SUDO=sudo
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
tools
