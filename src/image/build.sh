#!/usr/bin/env bash
# Builds the OCI image localhost/token-service:<version> without any container registry:
#   1. a Debian bookworm minbase rootfs (debootstrap, from the configured Debian mirror) with curl,
#   2. a small JRE made by jlink from the local JDK 17,
#   3. a base image from scratch (cached: built again only when its recipe changes),
#   4. the app image: jar + default configuration + health check, non-root, EXPOSE 4000,
#   5. an OCI archive (and a docker archive, which keeps the HEALTHCHECK) under target/.
#
# Usage: src/image/build.sh            (from anywhere; run as root, installs what it needs)
# Environment:
#   IMAGE_TAG        image tag (default: the version in pom.xml, else "dev")
#   IMAGE_SKIP_JAR=1 use target/token-service.jar as it is (default: build it if missing)
#   IMAGE_CACHE      cache folder for the rootfs and JRE (default: /var/tmp/token-service-image)
#   IMAGE_ARCHIVES=0 do not write the archives to target/
#   DEBIAN_MIRROR    Debian mirror for debootstrap (default: the one in /etc/apt/sources.list.d)
#   DEBIAN_SECURITY_MIRROR  mirror of bookworm-security (default: likewise, else deb.debian.org)
#   IMAGE_SECURITY_UPDATES=0  skip "apt-get upgrade" from bookworm-updates/-security in the rootfs
#   IMAGE_REFRESH=1  rebuild the cached rootfs and base image (e.g. to pick up new security updates)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
CACHE="${IMAGE_CACHE:-/var/tmp/token-service-image}"
SUITE=bookworm
INCLUDE="curl,ca-certificates"
MODULES="java.base,java.compiler,java.desktop,java.management,java.naming,java.net.http,java.scripting,java.security.jgss,java.sql,jdk.crypto.ec,jdk.jfr,jdk.management,jdk.net,jdk.unsupported,jdk.zipfs"
APP_UID=65534
APP_GID=65534

log() { printf '[image] %s\n' "$*" >&2; }
t0=$(date +%s)

# --- tools -------------------------------------------------------------------------------------
need=()
for tool in podman buildah skopeo debootstrap runc; do
  command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if ((${#need[@]})); then
  [[ $(id -u) -eq 0 ]] || { log "missing ${need[*]}; run as root or install them"; exit 1; }
  log "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman buildah skopeo debootstrap runc >/dev/null
fi
[[ $(id -u) -eq 0 ]] || { log "debootstrap and the image store need root"; exit 1; }

# --- JDK with jmods ----------------------------------------------------------------------------
JDK="${IMAGE_JDK:-}"
if [[ -z "$JDK" ]]; then
  for candidate in /usr/lib/jvm/java-17-openjdk-* /usr/lib/jvm/*17*; do
    if [[ -x "$candidate/bin/jlink" && -f "$candidate/jmods/java.base.jmod" ]]; then JDK="$candidate"; break; fi
  done
fi
[[ -n "$JDK" && -f "$JDK/jmods/java.base.jmod" ]] || { log "no JDK 17 with jmods (apt-get install openjdk-17-jdk-headless)"; exit 1; }
JDK_VERSION="$("$JDK/bin/java" -version 2>&1 | head -2 | tr '\n' ' ')"

# --- version and jar ---------------------------------------------------------------------------
VERSION="${IMAGE_TAG:-$(sed -n 's:.*<version>\(.*\)</version>.*:\1:p' pom.xml | head -1)}"
VERSION="${VERSION:-dev}"
IMAGE="localhost/token-service:${VERSION}"
JAR="target/token-service.jar"
if [[ ! -f "$JAR" && "${IMAGE_SKIP_JAR:-0}" != 1 ]]; then
  log "building $JAR"
  mvn -B -o -q package -DskipTests
fi
[[ -f "$JAR" ]] || { log "$JAR missing"; exit 1; }

# --- mirror ------------------------------------------------------------------------------------
if [[ -z "${DEBIAN_MIRROR:-}" ]]; then
  DEBIAN_MIRROR="$( { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}';
                      grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'; } \
                    | grep -E '/debian/?$' | head -1 || true)"
  DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
fi
if [[ -z "${DEBIAN_SECURITY_MIRROR:-}" ]]; then
  DEBIAN_SECURITY_MIRROR="$( { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}';
                      grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'; } \
                    | grep -E '/debian-security/?$' | head -1 || true)"
  DEBIAN_SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
fi

# --- base image (cached) -----------------------------------------------------------------------
# The tag is a hash of everything the base is made from, so a change of recipe rebuilds it.
BASE_RECIPE="suite=$SUITE include=$INCLUDE modules=$MODULES jdk=$JDK_VERSION uid=$APP_UID updates=${IMAGE_SECURITY_UPDATES:-1} rev=3"
BASE_HASH="$(printf '%s' "$BASE_RECIPE" | sha256sum | cut -c1-12)"
BASE="localhost/token-service-base:$BASE_HASH"
mkdir -p "$CACHE"
if [[ "${IMAGE_REFRESH:-0}" == 1 ]]; then
  log "refresh: dropping the cached rootfs and base"
  rm -f "$CACHE/rootfs-$BASE_HASH.tar"
  podman image rm -f "$BASE" >/dev/null 2>&1 || true
fi

if podman image exists "$BASE"; then
  log "base $BASE cached"
else
  ROOTFS_TAR="$CACHE/rootfs-$BASE_HASH.tar"
  if [[ ! -f "$ROOTFS_TAR" ]]; then
    work="$(mktemp -d "$CACHE/rootfs.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    log "debootstrap $SUITE minbase (+$INCLUDE) from $DEBIAN_MIRROR"
    debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$work/rootfs" "$DEBIAN_MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
      || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
    r="$work/rootfs"
    if [[ "${IMAGE_SECURITY_UPDATES:-1}" != 0 ]]; then
      log "apt-get upgrade from $SUITE-updates and $SUITE-security"
      printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
        "$DEBIAN_MIRROR" "$SUITE" "$DEBIAN_MIRROR" "$SUITE" "$DEBIAN_SECURITY_MIRROR" "$SUITE" > "$r/etc/apt/sources.list"
      { chroot "$r" apt-get update -qq &&
        chroot "$r" env DEBIAN_FRONTEND=noninteractive apt-get -y -qq -o Dpkg::Use-Pty=0 upgrade &&
        chroot "$r" apt-get clean; } >"$CACHE/upgrade.log" 2>&1 || { tail -20 "$CACHE/upgrade.log" >&2; exit 1; }
    fi
    # The JRE: the module set found for the service earlier (jdeps on the unpacked jar, its
    # module-info.class files removed first), plus java.net.http, jdk.management, jdk.net and
    # jdk.zipfs as a margin. ContainerImageIT runs the service on it.
    log "jlink JRE ($MODULES)"
    "$JDK/bin/jlink" --add-modules "$MODULES" --strip-debug --no-header-files --no-man-pages \
      --compress=2 --output "$r/opt/java"
    # Slim down: documentation (copyright files stay), locales, apt caches and logs.
    find "$r/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete 2>/dev/null || true
    rm -rf "$r"/usr/share/{man,info,locale,lintian,linda}/* "$r"/var/cache/apt/* "$r"/var/lib/apt/lists/* \
      "$r"/var/log/* "$r"/var/cache/debconf/*-old "$r"/var/lib/dpkg/*-old
    # Folders the service writes: /data (volume, embedded PostgreSQL) and /tmp (its binaries).
    install -d -m 0750 -o "$APP_UID" -g "$APP_GID" "$r/data"
    install -d -m 0755 -o 0 -g 0 "$r/app"
    chmod 1777 "$r/tmp"
    tar -C "$r" --numeric-owner -cf "$ROOTFS_TAR.part" .
    mv "$ROOTFS_TAR.part" "$ROOTFS_TAR"
    rm -rf "$work"; trap - EXIT
  else
    log "rootfs cached: $ROOTFS_TAR"
  fi
  log "base image $BASE"
  ctr="$(buildah from scratch)"
  buildah add --quiet "$ctr" "$ROOTFS_TAR" / >/dev/null
  buildah config \
    --env JAVA_HOME=/opt/java \
    --env PATH=/opt/java/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 \
    --label org.opencontainers.image.description="Debian $SUITE minbase with a jlink'd JRE 17" \
    "$ctr"
  buildah commit --quiet --format docker --rm "$ctr" "$BASE" >/dev/null
fi

# --- app image ---------------------------------------------------------------------------------
log "app image $IMAGE"
ctr="$(buildah from --format docker --pull-never "$BASE")"
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah copy --quiet --chown 0:0 --chmod 0644 "$ctr" "$JAR" /app/token-service.jar >/dev/null
buildah copy --quiet --chown 0:0 --chmod 0644 "$ctr" conf/config.json /app/conf/config.json >/dev/null
buildah copy --quiet --chown 0:0 --chmod 0755 "$ctr" src/image/healthcheck.sh /app/healthcheck.sh >/dev/null
REVISION="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
buildah config \
  --user "$APP_UID:$APP_GID" \
  --workingdir /app \
  --env TOKENS_DATA_DIR=/data \
  --env HOME=/data \
  --volume /data \
  --port 4000/tcp \
  --stop-signal SIGTERM \
  --healthcheck 'CMD /app/healthcheck.sh' \
  --healthcheck-interval 10s \
  --healthcheck-timeout 5s \
  --healthcheck-start-period 60s \
  --healthcheck-retries 3 \
  --entrypoint '["java","-jar","/app/token-service.jar"]' \
  --label org.opencontainers.image.title=token-service \
  --label org.opencontainers.image.version="$VERSION" \
  --label org.opencontainers.image.revision="$REVISION" \
  --label org.opencontainers.image.description="Token lease service (Vert.x), JRE 17, embedded PostgreSQL unless TOKENS_PG_URL is set" \
  "$ctr"
# docker format: the OCI image config has no HEALTHCHECK.
previous="$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
buildah commit --quiet --format docker --rm "$ctr" "$IMAGE" >/dev/null
trap - EXIT
# The image this build replaced, now untagged (kept if a container still uses it).
current="$(podman image inspect --format '{{.Id}}' "$IMAGE")"
if [[ -n "$previous" && "$previous" != "$current" ]]; then
  podman image rm "$previous" >/dev/null 2>&1 || true
fi

SIZE_BYTES="$(podman image inspect --format '{{.Size}}' "$IMAGE")"
SIZE_MB="$(( (SIZE_BYTES + 500000) / 1000000 ))"
BASE_MB="$(( ($(podman image inspect --format '{{.Size}}' "$BASE") + 500000) / 1000000 ))"
mkdir -p target
printf 'image=%s\nbase=%s\nsize_bytes=%s\nsize_mb=%s\nbase_size_mb=%s\n' \
  "$IMAGE" "$BASE" "$SIZE_BYTES" "$SIZE_MB" "$BASE_MB" > target/image-size.txt

if [[ "${IMAGE_ARCHIVES:-1}" != 0 ]]; then
  OCI="target/token-service-${VERSION}.oci.tar"
  DOCKER="target/token-service-${VERSION}.docker.tar"
  rm -f "$OCI" "$DOCKER"
  log "writing $OCI and $DOCKER"
  skopeo copy --quiet "containers-storage:$IMAGE" "oci-archive:$OCI:$IMAGE"
  skopeo copy --quiet "containers-storage:$IMAGE" "docker-archive:$DOCKER:$IMAGE"
  printf 'oci_archive=%s\noci_archive_mb=%s\ndocker_archive=%s\n' "$OCI" \
    "$(( ($(stat -c %s "$OCI") + 500000) / 1000000 ))" "$DOCKER" >> target/image-size.txt
fi

log "built $IMAGE: ${SIZE_MB} MB (base ${BASE_MB} MB) in $(( $(date +%s) - t0 )) s"
echo "$IMAGE ${SIZE_MB}MB"
