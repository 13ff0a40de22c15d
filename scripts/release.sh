#!/usr/bin/env bash
# Builds the release binary and packs it with config.toml, contrib/ (systemd unit, nginx
# example), README.md and LICENSE into dist/shopbox-<version>-<target>.tar.gz, with a
# .sha256 file beside it that `sha256sum -c` checks.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
target=$(rustc -vV | sed -n 's/^host: //p')
name="shopbox-$version-$target"

cargo build --release --locked
binary="${CARGO_TARGET_DIR:-target}/release/shopbox"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir "$stage/$name"
cp "$binary" config.toml README.md LICENSE "$stage/$name/"
cp -r contrib "$stage/$name/contrib"

mkdir -p dist
# Fixed owner, order and times: packing the same files again gives the same archive.
tar --sort=name --owner=0 --group=0 --numeric-owner \
  --mtime="@$(git log -1 --format=%ct 2>/dev/null || echo 0)" \
  -C "$stage" -cf - "$name" | gzip -n -9 >"dist/$name.tar.gz"
(cd dist && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")

echo "made dist/$name.tar.gz ($(du -h "dist/$name.tar.gz" | cut -f1)):"
tar -tzvf "dist/$name.tar.gz" | awk '{printf "  %10s  %s\n", $3, $6}'
echo "and dist/$name.tar.gz.sha256:"
echo "  $(cat "dist/$name.tar.gz.sha256")"
