#!/usr/bin/env bash
# Builds the photo set `png:data/photos` from Debian's plasma-workspace-wallpapers:
# the twelve 2560x1600 JPEG photographs (the package's other images are
# renders), decoded by libjpeg-turbo's djpeg and downscaled 4x by area
# averaging (scripts/photos.py) to 640x400 RGB PNGs, so that JPEG's 8x8 blocks
# are gone (Grey is a grey photograph, stored as RGB like the others). Whole images are held out: Kite, Path and summer_1am form the test
# split, the other nine the training split. The same packages give the same
# bytes; the script prints each file's SHA-256. GREY=1 writes the same
# photographs as 8-bit grey (BT.601 luma of the downscaled pixels, in integers).
#   scripts/make_photos.sh [OUT_DIR]     (default data/photos; GREY=1: data/photos-grey)
set -euo pipefail
cd "$(dirname "$0")/.."
GREY=${GREY:-0}
OUT=${1:-data/photos}
[ "$GREY" = 1 ] && OUT=${1:-data/photos-grey}
missing=()
[ -d /usr/share/wallpapers/Kite ] || missing+=(plasma-workspace-wallpapers)
command -v djpeg >/dev/null || missing+=(libjpeg-turbo-progs)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "make_photos: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
TRAIN="Autumn BytheWater ColdRipple ColorfulCups DarkestHour EveningGlow FallenLeaf Grey OneStandsOut"
TEST="Kite Path summer_1am"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT/train" "$OUT/test"
for split in train test; do
  names=$TRAIN; [ $split = test ] && names=$TEST
  for name in $names; do
    djpeg -pnm -rgb -dct int "/usr/share/wallpapers/$name/contents/images/2560x1600.jpg" > "$TMP/$name.ppm"
    python3 scripts/photos.py "$TMP/$name.ppm" "$OUT/$split/$name.png" 4 $([ "$GREY" = 1 ] && echo grey)
    echo "$(sha256sum "$OUT/$split/$name.png" | cut -c1-16)  $split/$name.png"
  done
done
echo "make_photos: png:$OUT (640x400 $([ "$GREY" = 1 ] && echo grey || echo RGB); 9 train, 3 test)"
