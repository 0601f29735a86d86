#!/usr/bin/env bash
# Make `dvc plots show` work offline: DVC's default page loads vega from a CDN, so build
# a page template with vega, vega-lite and vega-embed inlined (from the npm registry) and
# point this checkout's DVC at it (.dvc/config.local, not committed). Needs npm.
set -euo pipefail
cd "$(dirname "$0")/.."

VEGA=5.33.1 VEGA_LITE=5.23.0 VEGA_EMBED=6.29.0
template=.dvc/offline-plots/index.html
if ! command -v npm >/dev/null 2>&1; then
  echo "npm not found: install Debian's npm (scripts/install.sh does), else 'dvc plots show'" \
    "would fall back to vega from a CDN, which this machine can't reach" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "vega@$VEGA" "vega-lite@$VEGA_LITE" "vega-embed@$VEGA_EMBED" >/dev/null)
for package in vega vega-lite vega-embed; do
  mkdir -p "$work/$package"
  tar xzf "$work/$package"-[0-9]*.tgz -C "$work/$package"
done
mkdir -p "$(dirname "$template")"
{
  echo '<!DOCTYPE html>'
  echo '<html><head>{refresh_tag}<meta charset="utf-8"><title>ganlab plots</title>'
  for file in vega/package/build/vega.min.js vega-lite/package/build/vega-lite.min.js \
              vega-embed/package/build/vega-embed.min.js; do
    echo '<script type="text/javascript">'
    cat "$work/$file"
    echo '</script>'
  done
  echo '<style>table { border-spacing: 15px; } img { image-rendering: pixelated; }</style>'
  echo '</head><body>{plot_divs}</body></html>'
} > "$template.tmp"
mv "$template.tmp" "$template"
.venv/bin/dvc config --local plots.html_template offline-plots/index.html
echo "dvc plots show: offline page template in $template"
