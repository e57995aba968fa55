#!/usr/bin/env bash
# Real human speech for development and results, from Debian packages (no other download).
#
#   benchmarks/corpora/klettres.sh OUT
#
# OUT/klettres/<speaker>/{alpha,syllab}/*.ogg: KLettres' letter and syllable
#   recordings, 20 native speakers, one per language (ogg, 22.05-128 kHz, mono
#   and stereo, 0.2-7.6 s). Confound: each speaker is also a language and a
#   recording setup (microphone, room, level), so a classifier may learn any of
#   the three; every result on this corpus says so.
# OUT/alsa-utils/alsa/*.wav: the 7 channel-name announcements of alsa-utils'
#   speaker-test, one voice (48 kHz), plus its Noise.wav kept apart in
#   OUT/alsa-noise/ (a non-speech control).
set -euo pipefail
out=${1:?usage: klettres.sh OUT}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download klettres-data alsa-utils >/dev/null 2>&1) || {
  echo "apt-get download klettres-data alsa-utils failed (needs Debian's package index: apt-get update)" >&2
  exit 1
}
for deb in "$work"/*.deb; do dpkg -x "$deb" "$work/root"; done
share="$work/root/usr/share"
rm -rf "$out/klettres" "$out/alsa-utils" "$out/alsa-noise"
for lang in "$share"/klettres/*/; do
  name=$(basename "$lang")
  [ -n "$(find "$lang" -name '*.ogg' -print -quit)" ] || continue  # icons, pics, empty languages
  for kind in alpha syllab; do
    [ -d "$lang/$kind" ] || continue
    mkdir -p "$out/klettres/$name/$kind"
    find "$lang/$kind" -maxdepth 1 -name '*.ogg' -exec cp {} "$out/klettres/$name/$kind/" \;
  done
done
mkdir -p "$out/alsa-utils/alsa" "$out/alsa-noise/noise"
for wav in "$share"/sounds/alsa/*.wav; do
  case "$(basename "$wav")" in
    Noise.wav) cp "$wav" "$out/alsa-noise/noise/" ;;
    *) cp "$wav" "$out/alsa-utils/alsa/" ;;
  esac
done
echo "klettres:   $(find "$out/klettres" -name '*.ogg' | wc -l) recordings, $(ls "$out/klettres" | wc -l) speakers -> $out/klettres"
echo "alsa-utils: $(ls "$out/alsa-utils/alsa" | wc -l) recordings -> $out/alsa-utils"
