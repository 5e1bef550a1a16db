#!/usr/bin/env bash
# Vendor the web console's front-end packages from the npm registry into
# idlefleet/web/static/vendor/ (run at build time, from the repository root; needs npm).
# Pages load only these copies: nothing comes from a CDN at run time.
# Usage: tools/vendor_web.sh    (versions are pinned below; change them here to update)
set -euo pipefail
vendor="$PWD/idlefleet/web/static/vendor"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# package@version  files to copy (from the unpacked package/ folder)
fetch() {
    local spec=$1 dest=$2
    shift 2
    npm pack --silent "$spec" >/dev/null
    mkdir -p "unpacked/$dest" "$vendor/$dest"
    tar xzf ./*.tgz -C "unpacked/$dest"
    rm ./*.tgz
    for file in "$@" LICENSE*; do
        cp "unpacked/$dest/package/"$file "$vendor/$dest/"
    done
}
fetch water.css@2.1.1 water.css out/light.min.css
fetch uplot@1.6.32 uplot dist/uPlot.iife.min.js dist/uPlot.min.css
fetch htmx.org@2.0.11 htmx dist/htmx.min.js
fetch htmx-ext-sse@2.2.4 htmx-ext-sse dist/sse.min.js
ls -R "$vendor"
