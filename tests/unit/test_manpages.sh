#!/usr/bin/env bash
# The man pages cannot rot silently. Run from the repository top after `make` (tests/run does).
#
#  1. doc/hvctl.8 and doc/hvnoded.8 render with groff -man -t -ww without one warning.
#  2. hvctl.8 describes, as an entry (a line that starts with it), every command of
#     `hvctl --help`'s "Commands:" section and every subcommand that `hvctl help vm|node|rule|
#     fence|acl` lists; and it names every --option of those help texts.
#  3. hvnoded.8 describes every option of `hvnoded --help`, and in the section [S] of its
#     CONFIGURATION every key of section S that node/hvnoded.conf.example (commented or not)
#     or node/config.c's key table has, as an entry "key = ...".
#  4. The checks can fail: run on copies with one command and one key removed, they must.
#
# Env: HVCTL_8, HVNODED_8 check other pages (the self-check of 4 is then skipped).
# Prints "FAIL: <what>" and exits 1 on failure.
set -euo pipefail

hvctl=./hvctl
hvnoded=./hvnoded
conf=node/hvnoded.conf.example
config_c=node/config.c

fail() {
	echo "FAIL: $*"
	exit 1
}

command -v groff >/dev/null || fail "groff is not installed (make deps installs groff-base)"
[ -x "$hvctl" ] && [ -x "$hvnoded" ] || fail "hvctl or hvnoded not built: run make first"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# render PAGE: groff's warnings, fatal
render() {
	local out
	out=$(LC_ALL=C groff -man -t -ww -z "$1" 2>&1) || fail "$1: groff failed: $out"
	[ -z "$out" ] || fail "$1: groff warnings:"$'\n'"$out"
}

# Every help text hvctl prints: the top one, each command's, each subcommand's.
{
	"$hvctl" --help
	for c in $("$hvctl" --help | sed -n '/^Commands:/,/^$/p' | sed -n 's/^  \([a-z][a-z-]*\).*/\1/p' |
		sort -u); do
		"$hvctl" help "$c" 2>&1 || true
		for s in $("$hvctl" help "$c" 2>&1 | sed -n "s/^  $c \([a-z][a-z-]*\).*/\1/p" | sort -u); do
			"$hvctl" "$c" "$s" --help 2>&1 || true
		done
	done
} >"$tmp/help.txt"
"$hvctl" --help >"$tmp/top.txt"
for c in vm node rule fence acl; do
	"$hvctl" help "$c" >"$tmp/help-$c.txt" 2>&1 || true
done
"$hvnoded" --help >"$tmp/hvnoded-help.txt"

# check HVCTL_PAGE HVNODED_PAGE: prints what is missing, exits 1 if anything is
check() {
	python3 - "$1" "$2" "$tmp" "$conf" "$config_c" <<'EOF'
import glob, re, subprocess, sys

hvctl_page, hvnoded_page, tmp, conf, config_c = sys.argv[1:6]

def normalize(path):
    """(macro, text) per line of a roff page: fonts, quotes and escapes gone."""
    out = []
    for raw in open(path, encoding="utf-8"):
        line = raw.rstrip("\n")
        if line.startswith('.\\"') or line.startswith("'\\\""):
            continue
        macro = ""
        m = re.match(r"^\.([A-Za-z]+)\s*(.*)$", line)
        if m:
            macro, line = m.group(1), m.group(2)
        line = re.sub(r"\\f(\[[^]]*\]|\(..|.)", "", line)
        line = (line.replace("\\-", "-").replace("\\(en", "-").replace("\\&", "")
                .replace("\\%", "").replace("\\e", "\\").replace("\\ ", " "))
        if macro:
            line = line.replace('"', "")
        out.append((macro, " ".join(line.split())))
    return out

def starts_entry(lines, phrase):
    return any(t == phrase or t.startswith(phrase + " ") for _, t in lines)

missing = []

# hvctl: commands and subcommands as entries, options anywhere
page = normalize(hvctl_page)
text = "\n".join(t for _, t in page)
phrases = set()
top = open(f"{tmp}/top.txt").read()
section = re.search(r"^Commands:\n(.*?)(?:\n\n|\Z)", top, re.S | re.M)
if not section:
    missing.append("hvctl --help has no Commands: section (the test cannot read it)")
else:
    for line in section.group(1).splitlines():
        if not re.match(r"^  \S", line):
            continue  # a continued description
        words = re.split(r"\s{2,}", line.strip())[0].split()
        if len(words) > 1 and re.fullmatch(r"[a-z][a-z-]*(\|[a-z][a-z-]*)*", words[1]):
            phrases.update(f"{words[0]} {s}" for s in words[1].split("|"))
        else:
            phrases.add(words[0])
for f in sorted(glob.glob(f"{tmp}/help-*.txt")):
    group = f.rsplit("-", 1)[1][:-4]
    for line in open(f):
        if not line.startswith("  " + group + " "):
            continue
        for m in re.finditer(rf"\b{group}((?: [a-z][a-z-]*(?:\|[a-z][a-z-]*)*)+)", line):
            words = m.group(1).split()
            for s in words[0].split("|"):
                phrases.add(" ".join([group, s] + words[1:]))
if len(phrases) < 10:
    missing.append(f"only {len(phrases)} hvctl commands read from its help (the test is broken)")
for p in sorted(phrases):
    if not starts_entry(page, p):
        missing.append(f"{hvctl_page}: no entry for command '{p}'")
options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", open(f"{tmp}/help.txt").read()))
for o in sorted(options):
    if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", text):
        missing.append(f"{hvctl_page}: option {o} is not described")

# hvnoded: options anywhere, config keys as entries in their section
page = normalize(hvnoded_page)
text = "\n".join(t for _, t in page)
for o in sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", open(f"{tmp}/hvnoded-help.txt").read()))):
    if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", text):
        missing.append(f"{hvnoded_page}: option {o} is not described")
keys = set()
sec = None
for line in open(conf):
    m = re.match(r"^\[(\w+)\]", line)
    if m:
        sec = m.group(1)
        continue
    m = re.match(r"^#?\s*([a-z_][a-z0-9_]*)\s*=", line)
    if m and sec:
        keys.add((sec, m.group(1)))
keys.update(re.findall(r'\{\s*"(\w+)",\s*"(\w+)",\s*KEY_', open(config_c).read()))
if len(keys) < 10:
    missing.append(f"only {len(keys)} config keys read (the test is broken)")
entries = {}
sec = None
for macro, t in page:
    if macro in ("SH", "SS"):
        m = re.fullmatch(r"\[(\w+)\]", t)
        sec = m.group(1) if macro == "SS" and m else None
        continue
    if sec:
        m = re.match(r"^([a-z_][a-z0-9_]*) =", t)
        if m:
            entries.setdefault(sec, set()).add(m.group(1))
for s, k in sorted(keys):
    if k not in entries.get(s, set()):
        missing.append(f"{hvnoded_page}: no entry for [{s}] {k}")

for m in missing:
    print(m)
sys.exit(1 if missing else 0)
EOF
}

hvctl_8=${HVCTL_8:-doc/hvctl.8}
hvnoded_8=${HVNODED_8:-doc/hvnoded.8}
render "$hvctl_8"
render "$hvnoded_8"
out=$(check "$hvctl_8" "$hvnoded_8") || fail "the man pages miss what the programs have:"$'\n'"$out"
echo "ok: $hvctl_8 and $hvnoded_8 render without warnings and cover every command, option and key"

[ -z "${HVCTL_8:-}${HVNODED_8:-}" ] || exit 0

# The checks must be able to fail: a page without 'vm migrate-cancel', one without [vm] uid_count.
grep -v '^\\fBvm migrate\\-cancel\\fR' "$hvctl_8" >"$tmp/hvctl.8"
grep -v '^\.BI "uid_count = "' "$hvnoded_8" >"$tmp/hvnoded.8"
cmp -s "$hvctl_8" "$tmp/hvctl.8" && fail "self-check: could not remove 'vm migrate-cancel' from a copy"
cmp -s "$hvnoded_8" "$tmp/hvnoded.8" && fail "self-check: could not remove uid_count from a copy"
if out=$(check "$tmp/hvctl.8" "$hvnoded_8"); then
	fail "self-check: a page without 'vm migrate-cancel' passed"
fi
grep -q "command 'vm migrate-cancel'" <<<"$out" || fail "self-check: unexpected complaint: $out"
if out=$(check "$hvctl_8" "$tmp/hvnoded.8"); then
	fail "self-check: a page without [vm] uid_count passed"
fi
grep -q "\[vm\] uid_count" <<<"$out" || fail "self-check: unexpected complaint: $out"
echo "ok: the checks catch a missing command and a missing config key"
