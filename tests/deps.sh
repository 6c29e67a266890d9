#!/bin/sh
# Install the Debian packages given as arguments that are not installed yet.
# Run by `make deps` (and so by `make check` and `make demo`).
set -eu

missing=
for p in "$@"; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing Debian packages:$missing" >&2
	echo "deps: run 'make deps' as root to install them" >&2
	exit 1
fi
echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# policy-rc.d keeps the packages' own services (corosync, tgt) from starting:
# the lab runs its own instances.
prc=/usr/sbin/policy-rc.d
had_prc=0
[ -e "$prc" ] && had_prc=1
[ $had_prc = 1 ] || { printf '#!/bin/sh\nexit 101\n' > "$prc"; chmod 755 "$prc"; }
rc=0
apt-get install -y -q --no-install-recommends $missing || rc=$?
[ $had_prc = 1 ] || rm -f "$prc"
exit $rc
