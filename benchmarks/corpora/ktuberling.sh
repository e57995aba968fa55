#!/usr/bin/env bash
# A second corpus of real human speech from a Debian package, and a manifest
# of both corpora (no other download).
#
#   benchmarks/corpora/ktuberling.sh OUT      # after benchmarks/corpora/klettres.sh OUT
#
# OUT/ktuberling/<language>/*.{ogg,opus,wav}: KTuberling's spoken words, one
#   volunteer per language (13 languages with 70-210 files; a dozen more
#   with 11-15). Confound, as KLettres: each speaker is also a language and a
#   recording setup. The sr, sr@ijekavian, sr@ijekavianlatin and sr@latin
#   folders hold the same recordings: a natural duplicate test.
# OUT/real_speakers.csv: a manifest (path,speaker) of KLettres and KTuberling
#   together, speakers named klettres:<lang> and ktuberling:<lang>.
set -euo pipefail
out=${1:?usage: ktuberling.sh OUT}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download ktuberling-data >/dev/null 2>&1) || {
  echo "apt-get download ktuberling-data failed (needs Debian's package index: apt-get update)" >&2
  exit 1
}
dpkg -x "$work"/*.deb "$work/root"
rm -rf "$out/ktuberling"
for lang in "$work"/root/usr/share/ktuberling/sounds/*/; do
  name=$(basename "$lang")
  mkdir -p "$out/ktuberling/$name"
  find "$lang" -maxdepth 1 -type f \( -name '*.ogg' -o -name '*.opus' -o -name '*.wav' \) \
    -exec cp {} "$out/ktuberling/$name/" \;
  rmdir --ignore-fail-on-non-empty "$out/ktuberling/$name"
done
{
  echo "path,speaker"
  for corpus in klettres ktuberling; do
    [ -d "$out/$corpus" ] || continue
    (cd "$out" && find "$corpus" -type f \( -name '*.ogg' -o -name '*.opus' -o -name '*.wav' \) | sort) |
      awk -F/ -v c="$corpus" '{ print $0 "," c ":" $2 }'
  done
} > "$out/real_speakers.csv"
echo "ktuberling: $(find "$out/ktuberling" -type f | wc -l) recordings, $(ls "$out/ktuberling" | wc -l) speakers -> $out/ktuberling"
echo "manifest:   $(($(wc -l < "$out/real_speakers.csv") - 1)) rows -> $out/real_speakers.csv"
