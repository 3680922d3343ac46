"""A class-per-folder dataset that is not faces: grey digits 0–9 drawn in the fonts this machine has.

Usage: python bench/make_glyph_folder.py OUT [--per-class 1000] [--size 32] [--seed 0]

Writes ``OUT/<digit>/<n>.png`` (8-bit greyscale PNGs, ``--size`` pixels square) and ``OUT/complete`` last, so
an interrupted run is redone, not half used. Why: the synthetic faces are the only data homogan ships, and a
recipe chosen on them alone is not a result (the project's rule "real data is the judge"). These glyphs
differ from the faces in every way a default could depend on — one channel, sparse strokes on a flat
background, ten classes that a mirror turns into other shapes, no pose or identity — and they have the
shape of the small class folders users train on (a few hundred images per class, 32 px), like MNIST or
scikit-learn's 8×8 digits. Each image draws its font (the DejaVu faces under /usr/share/fonts, else
Pillow's built-in font), size, slant, stroke width, position and grey levels at random, at 4× the size,
then shrinks it with a Lanczos filter, so strokes are anti-aliased as in scanned digits.
"""

from __future__ import annotations

import argparse
from pathlib import Path

FONT_DIRS = (Path("/usr/share/fonts"),)


def fonts() -> list[str | None]:
    """TrueType files to draw with; ``None`` stands for Pillow's built-in font when none is installed."""
    found = sorted(str(p) for d in FONT_DIRS if d.is_dir() for p in d.rglob("DejaVu*.ttf"))
    return found or [None]


def glyph(digit: int, size: int, font_path: str | None, rng) -> "Image.Image":  # noqa: F821
    from PIL import Image, ImageDraw, ImageFont

    big = size * 4
    paper = int(rng.integers(0, 70))
    ink = int(rng.integers(170, 256))
    points = int(big * rng.uniform(0.55, 0.85))
    font = ImageFont.truetype(font_path, points) if font_path else ImageFont.load_default(points)
    canvas = Image.new("L", (big * 2, big * 2), paper)
    ImageDraw.Draw(canvas).text((big, big), str(digit), fill=ink, font=font, anchor="mm",
                                stroke_width=int(rng.integers(0, 3)) * size // 16, stroke_fill=ink)
    canvas = canvas.rotate(float(rng.uniform(-12, 12)), resample=Image.BICUBIC, fillcolor=paper)
    shift = rng.uniform(-0.08, 0.08, size=2) * big
    left, top = int(big / 2 + shift[0]), int(big / 2 + shift[1])
    return canvas.crop((left, top, left + big, top + big)).resize((size, size), Image.LANCZOS)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import numpy as np

    done = args.out / "complete"
    if done.is_file():
        print(f"{args.out} is complete ({done.read_text().strip()} images); nothing to do")
        return
    rng = np.random.default_rng(args.seed)
    paths = fonts()
    for digit in range(10):
        folder = args.out / str(digit)
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(args.per_class):
            font = paths[int(rng.integers(len(paths)))]
            glyph(digit, args.size, font, rng).save(folder / f"{n:05d}.png")
    done.write_text(f"{10 * args.per_class}\n")
    print(f"wrote {10 * args.per_class} greyscale {args.size} px digits in 10 class folders to {args.out} "
          f"({len(paths)} fonts)")


if __name__ == "__main__":
    main()
