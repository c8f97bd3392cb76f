#!/bin/sh
# base-images.sh: builds the base images our Dockerfiles start FROM,
# debian:bookworm and debian:bookworm-slim, with debootstrap (minbase) from
# the Debian mirror this machine's own apt sources name, for machines that
# reach a Debian mirror but not Docker Hub.  An image that already exists is
# kept.  Needs root, debootstrap and a running Docker engine.
#   docker/base-images.sh            both images
#   BASE_IMAGES_FORCE=1 docker/base-images.sh   rebuild them
set -eu

suite=bookworm
force=${BASE_IMAGES_FORCE:-0}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

if [ "$force" != 1 ] && have_image "debian:$suite" && have_image "debian:$suite-slim"; then
	echo "base-images.sh: debian:$suite and debian:$suite-slim exist, kept"
	exit 0
fi
command -v debootstrap >/dev/null || { echo "base-images.sh: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }

# The first URI of an apt source for the suite itself (not -security or
# -updates), from deb822 .sources files or one-line .list files.
mirror_from_sources() {
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk -v suite="$suite" '
			function flush() { if (deb && ok && on && uri != "") print uri; uri = ""; ok = 0; deb = 0; on = 1 }
			BEGIN { on = 1 }
			/^[ \t]*$/ { flush(); next }
			/^[ \t]*#/ { next }
			tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
			tolower($1) == "uris:" { uri = $2 }
			tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) ok = 1 }
			tolower($1) == "enabled:" { on = (tolower($2) != "no") }
			END { flush() }
		' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		sed -e 's/\[[^]]*\]//' "$f" | awk -v suite="$suite" '$1 == "deb" && $3 == suite { print $2 }'
	done
}
mirror=$(mirror_from_sources | head -n 1)
[ -n "$mirror" ] || { echo "base-images.sh: no apt source for $suite found in /etc/apt" >&2; exit 1; }
echo "base-images.sh: debootstrap $suite (minbase) from the mirror of this machine's apt sources"

root=$(mktemp -d "${TMPDIR:-/tmp}/base-images.XXXXXX")
trap 'rm -rf "$root"' EXIT INT TERM
debootstrap --variant=minbase "$suite" "$root/fs" "$mirror" >"$root/debootstrap.log" 2>&1 ||
	{ tail -n 30 "$root/debootstrap.log" >&2; echo "base-images.sh: debootstrap failed" >&2; exit 1; }

fs=$root/fs
# As Docker's official Debian images: no package caches, no daemons started
# by package scripts, apt keeps no downloaded .debs.
rm -rf "$fs/var/cache/apt/archives"/*.deb "$fs/var/lib/apt/lists"/*
mkdir -p "$fs/usr/sbin"
printf '#!/bin/sh\nexit 101\n' > "$fs/usr/sbin/policy-rc.d"
chmod 755 "$fs/usr/sbin/policy-rc.d"
cat > "$fs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo 'Acquire::Languages "none";' > "$fs/etc/apt/apt.conf.d/docker-no-languages"
: > "$fs/etc/hostname"
: > "$fs/etc/resolv.conf"

tar -C "$fs" -c . | docker import - "debian:$suite" >/dev/null
echo "base-images.sh: imported debian:$suite"

# The slim variant: no documentation, manual pages or translations, now or
# from packages installed later.
cat > "$fs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
find "$fs/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete 2>/dev/null || true
find "$fs/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf "$fs/usr/share/man"/* "$fs/usr/share/info"/* "$fs/usr/share/groff"/* "$fs/usr/share/lintian"/*
find "$fs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
tar -C "$fs" -c . | docker import - "debian:$suite-slim" >/dev/null
echo "base-images.sh: imported debian:$suite-slim"
