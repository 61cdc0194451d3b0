#!/bin/sh
# Installs the Debian packages named in $DEB_PACKAGES that are not installed
# yet, as root or through sudo. Prints nothing and changes nothing when all
# of them are present.
set -eu
missing=""
for p in $DEB_PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "deps: need root or sudo to install$missing" >&2; exit 1; }
	SUDO=sudo
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
