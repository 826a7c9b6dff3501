#!/usr/bin/env bash
# Builds the photo set `png:data/photos` from Debian's plasma-workspace-wallpapers:
# the twelve 2560x1600 JPEG photographs (the package's other images are
# renders), decoded by libjpeg-turbo's djpeg and downscaled 4x by area
# averaging (scripts/photos.py) to 640x400 RGB PNGs, so that JPEG's 8x8 blocks
# are gone (Grey is a grey photograph, stored as RGB like the others). Whole images are held out: Kite, Path and summer_1am form the test
# split, the other nine the training split. The same packages give the same
# bytes; the script prints each file's SHA-256. GREY=1 writes the same
# photographs as 8-bit grey (BT.601 luma of the downscaled pixels, in integers).
#
# PLUS=1 builds a larger training split for the same test split
# (data/photos-plus): the nine training photographs and the twelve
# photographs of Debian's mate-backgrounds (nature/, 1280 to 2560 pixels wide),
# each downscaled 4x the same way and cut into whole 320x200 tiles (png:DIR
# takes images of one size; the rest of each right and bottom edge is
# dropped): 36 tiles from the nine, 30 from the twelve, 66 in all. The test
# split is the same three 640x400 photographs, byte for byte.
#   scripts/make_photos.sh [OUT_DIR]     (default data/photos; GREY=1: data/photos-grey;
#                                          PLUS=1: data/photos-plus, with GREY=1 data/photos-plus-grey)
set -euo pipefail
cd "$(dirname "$0")/.."
GREY=${GREY:-0}
PLUS=${PLUS:-0}
NAME=photos
[ "$PLUS" = 1 ] && NAME=photos-plus
[ "$GREY" = 1 ] && NAME=$NAME-grey
OUT=${1:-data/$NAME}
MATE=/usr/share/backgrounds/mate/nature
missing=()
[ -d /usr/share/wallpapers/Kite ] || missing+=(plasma-workspace-wallpapers)
[ "$PLUS" = 1 ] && [ ! -d $MATE ] && missing+=(mate-backgrounds)
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
MATE_NAMES="Aqua Blinds Dune FreshFlower Garden GreenMeadow LadyBird RainDrops Storm TwoWings Wood YellowFlower"
GREY_OPT=$([ "$GREY" = 1 ] && echo grey || true)
TRAIN_SIZE=640x400 TILE_OPT=
[ "$PLUS" = 1 ] && TRAIN_SIZE=320x200 TILE_OPT=tiles=320x200
# photo JPEG OUT.png [tiles]: decodes, downscales 4x, writes OUT.png (or its tiles OUT_k.png)
photo() {
  djpeg -pnm -rgb -dct int "$1" > "$TMP/in.ppm"
  python3 scripts/photos.py "$TMP/in.ppm" "$2" 4 $GREY_OPT ${3:-}
}
for name in $TRAIN; do
  photo "/usr/share/wallpapers/$name/contents/images/2560x1600.jpg" "$OUT/train/$name.png" $TILE_OPT
done
if [ "$PLUS" = 1 ]; then
  for name in $MATE_NAMES; do photo "$MATE/$name.jpg" "$OUT/train/mate-$name.png" $TILE_OPT; done
fi
for name in $TEST; do
  photo "/usr/share/wallpapers/$name/contents/images/2560x1600.jpg" "$OUT/test/$name.png"
done
(cd "$OUT" && sha256sum train/*.png test/*.png | cut -c1-16,65-)
n_train=$(ls "$OUT/train" | wc -l)
echo "make_photos: png:$OUT ($([ "$GREY" = 1 ] && echo grey || echo RGB); $n_train train images of $TRAIN_SIZE, 3 test images of 640x400)"
