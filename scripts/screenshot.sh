#!/usr/bin/env bash
# Renders the demo's PR comment the way GitHub shows it and screenshots it: the comment (with
# its charts inline, as after publishing) goes through cmark-gfm, GitHub's own Markdown
# renderer, into a page styled like a GitHub comment, and headless Chromium takes the picture.
#
#   scripts/screenshot.sh            -> docs/comment.png (light) and docs/comment-dark.png
#
# Needs cargo, python3, and the Debian packages cmark-gfm and chromium. No network: the charts
# are served from 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(mktemp -d)
server=
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
    rm -rf "$out"
}
trap cleanup EXIT

port=${PORT:-8765}
cargo run -q -- demo --out "$out" >/dev/null 2>&1
cargo run -q --example render_comment -- "$out/results.json" "http://127.0.0.1:$port/charts" >"$out/comment.md"

page() { # $1: light | dark
    if [ "$1" = dark ]; then
        colors='--fg:#e6edf3;--bg:#0d1117;--muted:#9198a1;--border:#3d444d;--code:#151b23;--del:#4b1e1e;--ins:#12361f;--link:#4493f8'
    else
        colors='--fg:#1f2328;--bg:#ffffff;--muted:#59636e;--border:#d1d9e0;--code:#f6f8fa;--del:#ffebe9;--ins:#dafbe1;--link:#0969da'
    fi
    cat <<HTML
<!doctype html><html><head><meta charset="utf-8"><style>
:root{$colors}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.5 "DejaVu Sans",sans-serif}
.comment{max-width:880px;margin:16px auto;border:1px solid var(--border);border-radius:6px}
.comment>header{background:var(--code);border-bottom:1px solid var(--border);padding:8px 16px;color:var(--muted);border-radius:6px 6px 0 0}
article{padding:16px}
h3{font-size:1.25em;margin:0 0 16px}
table{border-collapse:collapse;margin:0 0 16px;display:block;overflow:auto;max-width:100%}
th,td{border:1px solid var(--border);padding:6px 13px;vertical-align:top}
th{font-weight:600}
img{max-width:100%;box-sizing:content-box}
pre{background:var(--code);padding:16px;border-radius:6px;overflow:auto;font:12px/1.45 "DejaVu Sans Mono",monospace}
code{font-family:"DejaVu Sans Mono",monospace}
details{margin:0 0 16px}
summary{cursor:pointer}
del{background:var(--del)}
ins{background:var(--ins);text-decoration:none}
a{color:var(--link)}
sub{color:var(--muted)}
</style></head><body><div class="comment"><header><b>promptgate</b> bot commented</header><article>
HTML
    cmark-gfm --unsafe -e table -e strikethrough -e autolink -e tagfilter "$out/comment.md"
    echo '</article></div></body></html>'
}
page light >"$out/light.html"
page dark >"$out/dark.html"

python3 -m http.server "$port" --bind 127.0.0.1 --directory "$out" >/dev/null 2>&1 &
server=$!
for _ in $(seq 50); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/light.html')" 2>/dev/null; then break; fi
    sleep 0.1
done

shoot() { # $1: page, $2: png
    chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
        --disable-component-update --no-first-run --hide-scrollbars \
        --force-device-scale-factor=1 --window-size="${WIDTH:-920},${HEIGHT:-2600}" \
        --screenshot="$PWD/$2" "http://127.0.0.1:$port/$1" >/dev/null 2>&1
    echo "wrote $2"
}
shoot light.html docs/comment.png
shoot dark.html docs/comment-dark.png
