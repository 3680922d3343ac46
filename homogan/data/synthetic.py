"""Procedural stand-in for CelebA: drawn faces written in CelebA's exact on-disk layout.

Why: CelebA cannot be downloaded everywhere (no network, Google Drive quotas), yet the
experiments need faces with CelebA's 40 binary attributes. This module draws simple but
recognisable faces from an attribute vector and writes them exactly like the official release
(``img_align_celeba/000001.jpg`` 178x218 JPEGs, ``list_attr_celeba.txt``,
``list_eval_partition.txt``). It is the offline default training set, and the fixture that
proves the real CelebA reader works. The geometry mimics *aligned* CelebA: face centred, eyes
near y=111, face about 100 px wide, so the usual 160x160 centre crop frames the face.

Rendered, visibly at 64x64 px: Male (square jaw, short hair; women have long hair beside the
face), Eyeglasses (thick frames, sometimes sunglasses), Bald (skin-coloured dome), No_Beard=-1
(beard over jaw and chin), Goatee, Mustache, Sideburns, 5_o_Clock_Shadow, Smiling (wider, corners
up, teeth), Mouth_Slightly_Open (dark mouth), Black/Blond/Brown/Gray_Hair, Wearing_Hat, Pale_Skin,
Young (older: wrinkles, greyer hair, duller skin), Wearing_Lipstick, Heavy_Makeup (eye shadow,
eyeliner, blush), Bangs, Receding_Hairline, Wavy_Hair, Rosy_Cheeks, High_Cheekbones,
Bags_Under_Eyes, Bushy_Eyebrows, Arched_Eyebrows, Narrow_Eyes, Big_Nose, Pointy_Nose, Big_Lips,
Chubby, Double_Chin, Oval_Face, Blurry, Wearing_Earrings; Wearing_Necklace and Wearing_Necktie
are drawn but fall mostly below the crop. Sampled with plausible frequencies but not rendered:
Attractive, Straight_Hair.

Deterministic: the attribute table comes from ``default_rng(seed)`` and image ``i`` (1-based)
from ``default_rng([seed, i])``, so the output does not depend on the number of workers.

Processes: with more than one worker the drawing runs in a child interpreter started as
``python -c "from homogan.data.synthetic import ..."`` whose 'spawn' pool does the rendering. A
spawn pool started in the caller's process would re-import the caller's ``__main__`` script in
every worker; a script without an ``if __name__ == "__main__":`` guard (a frozen experiment's
old ``main.py``, a user's notebook-style script) then re-ran itself in each worker, forever. The
child has no ``__main__`` file, so its workers import only this module, and TensorFlow loaded in
the caller never meets ``fork``.
"""

from __future__ import annotations

import colorsys
import math
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from homogan.celeba_attributes import CELEBA_ATTRIBUTES, CELEBA_IMAGE_HEIGHT, CELEBA_IMAGE_WIDTH
from homogan.errors import DataError, UserError

SYNTHETIC_VERSION: int = 1

_W, _H = CELEBA_IMAGE_WIDTH, CELEBA_IMAGE_HEIGHT
_SS = 2  # supersampling: draw at 2x, box-downsample (anti-aliasing)
_HAIR_COLOURS = ("Black_Hair", "Brown_Hair", "Blond_Hair", "Gray_Hair")


# --- Attributes ------------------------------------------------------------------------------


def sample_attributes(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 40) int8 array of +1/-1 in CELEBA_ATTRIBUTES order, with coherent correlations.

    Eyeglasses (~35 %), Bald (~30 %) and beards (No_Beard=-1, ~30 %) are much more frequent
    than in CelebA so that a conditional GAN sees every combination of them (each >= ~5 %).
    """

    def draw(p):  # p: one probability, or one per row
        return rng.random(n) < p

    a = {}
    male = a["Male"] = draw(0.45)
    young = a["Young"] = draw(0.75)
    a["Eyeglasses"] = draw(np.where(young, 0.30, 0.50))
    bald = a["Bald"] = draw(np.where(male, 0.50, 0.13))
    beard = male & draw(2 / 3)
    a["No_Beard"] = ~beard
    a["Goatee"] = beard & draw(0.3)
    a["Mustache"] = beard & draw(0.5)
    a["Sideburns"] = male & draw(np.where(beard, 0.35, 0.05))
    a["5_o_Clock_Shadow"] = male & ~beard & draw(0.35)
    a["Wearing_Hat"] = ~bald & draw(0.10)
    a["Bangs"] = ~bald & draw(np.where(male, 0.10, 0.25))
    a["Receding_Hairline"] = ~bald & draw(np.where(male, np.where(young, 0.08, 0.30), 0.03))
    wavy = a["Wavy_Hair"] = ~bald & draw(np.where(male, 0.15, 0.50))
    a["Straight_Hair"] = ~bald & ~wavy & draw(0.35)
    # Exactly one hair colour (order of _HAIR_COLOURS); bald heads have none, or grey side hair.
    p_hair = np.where(young[:, None],
                      np.where(male[:, None], [0.40, 0.45, 0.13, 0.02], [0.25, 0.43, 0.30, 0.02]),
                      [0.25, 0.15, 0.10, 0.50])
    choice = (rng.random(n)[:, None] > np.cumsum(p_hair, axis=1)).sum(axis=1).clip(0, 3)
    for k, name in enumerate(_HAIR_COLOURS):
        a[name] = ~bald & (choice == k)
    a["Gray_Hair"] |= bald & draw(np.where(young, 0.05, 0.5))
    lipstick = a["Wearing_Lipstick"] = draw(np.where(male, 0.01, np.where(young, 0.75, 0.5)))
    a["Heavy_Makeup"] = draw(np.where(male, 0.005, np.where(lipstick, 0.65, 0.1)))
    smiling = a["Smiling"] = draw(0.48)
    a["Mouth_Slightly_Open"] = draw(np.where(smiling, 0.65, 0.30))
    a["High_Cheekbones"] = draw(np.where(smiling, 0.75, 0.15))
    a["Rosy_Cheeks"] = draw(np.where(male, 0.01, 0.12))
    a["Arched_Eyebrows"] = draw(np.where(male, 0.05, 0.45))
    a["Bushy_Eyebrows"] = draw(np.where(male, 0.25, 0.08))
    a["Bags_Under_Eyes"] = draw(np.where(young, 0.15, 0.45))
    a["Chubby"] = draw(np.where(young, 0.03, 0.15))
    a["Double_Chin"] = draw(np.where(young, 0.02, 0.15))
    big_nose = a["Big_Nose"] = draw(np.where(male, 0.40, 0.10))
    a["Pointy_Nose"] = ~big_nose & draw(0.33)
    a["Big_Lips"] = draw(0.24)
    a["Narrow_Eyes"] = draw(0.12)
    a["Oval_Face"] = draw(0.28)
    a["Pale_Skin"] = draw(0.10)
    a["Blurry"] = draw(0.05)
    a["Attractive"] = draw(np.where(young, np.where(male, 0.35, 0.70), 0.20))
    a["Wearing_Earrings"] = draw(np.where(male, 0.02, 0.33))
    a["Wearing_Necklace"] = draw(np.where(male, 0.01, 0.20))
    a["Wearing_Necktie"] = draw(np.where(male, 0.15, 0.005))
    table = np.stack([a[name] for name in CELEBA_ATTRIBUTES], axis=1)
    return np.where(table, 1, -1).astype(np.int8)


# --- Rendering -------------------------------------------------------------------------------

_SKIN = ((233, 192, 160), (222, 174, 140), (196, 146, 110), (160, 110, 78), (122, 82, 56), (92, 62, 46))
_PALE = ((252, 233, 222), (246, 222, 205))
_HAIR = {"Black_Hair": (28, 24, 24), "Brown_Hair": (98, 62, 36), "Blond_Hair": (226, 190, 112),
         "Gray_Hair": (178, 178, 174)}
_IRIS = ((92, 58, 32), (50, 32, 22), (70, 110, 150), (80, 110, 70), (120, 92, 50))
_HATS = ((200, 30, 40), (40, 80, 200), (30, 140, 70), (240, 235, 220), (230, 130, 30), (230, 200, 40))
_FRAMES = ((15, 15, 18), (45, 25, 15), (20, 25, 60), (60, 15, 20))
_LIPSTICK = ((190, 25, 50), (160, 20, 40), (210, 60, 90), (140, 30, 60))
_EYESHADOW = ((110, 60, 130), (90, 60, 40), (60, 90, 150), (40, 40, 50))

# Every random number of an image is drawn up front, in this order, whatever the attributes:
# the same rng with one attribute flipped gives the same face with only that attribute changed.
_RANDOM_FIELDS = ("jx", "jy", "scale", "skin", "hair", "hair_len", "wave", "bg_angle", "eye", "gaze",
                  "frame", "sun", "hat", "lip", "shadow", "fringe", "hairline",
                  "brow", "mouth", "earring", "clothes_h", "clothes_v", "tie")


def _mix(c1, c2, t):
    return tuple(int(round(a + (b - a) * t)) for a, b in zip(c1, c2))


def _shade(c, f, alpha=None):
    c = tuple(min(255, max(0, int(round(v * f)))) for v in c[:3])
    return c if alpha is None else c + (alpha,)


def _palette(colours, u):
    """Linear interpolation along a list of colours, u in [0, 1]."""
    x = u * (len(colours) - 1)
    i = min(int(x), len(colours) - 2)
    return _mix(colours[i], colours[i + 1], x - i)


def _pick(options, u):
    return options[min(int(u * len(options)), len(options) - 1)]


class _Pen:
    """ImageDraw in 1x image coordinates on a supersampled canvas (optionally offset).

    Colours with a 4th (alpha) component are blended; opaque ones use the much faster plain draw.
    """

    def __init__(self, img, origin=(0, 0)):
        self.plain = ImageDraw.Draw(img)
        self.blend = ImageDraw.Draw(img, "RGBA") if img.mode == "RGB" else self.plain
        self.ox, self.oy = origin

    def _for(self, colour):
        return self.blend if isinstance(colour, tuple) and len(colour) == 4 else self.plain

    def _box(self, cx, cy, rx, ry):
        cx, cy = cx - self.ox, cy - self.oy
        return [(cx - rx) * _SS, (cy - ry) * _SS, (cx + rx) * _SS, (cy + ry) * _SS]

    def _pts(self, pts):
        return [((x - self.ox) * _SS, (y - self.oy) * _SS) for x, y in pts]

    def ellipse(self, cx, cy, rx, ry, fill):
        self._for(fill).ellipse(self._box(cx, cy, rx, ry), fill=fill)

    def chord(self, cx, cy, rx, ry, start, end, fill):
        self._for(fill).chord(self._box(cx, cy, rx, ry), start, end, fill=fill)

    def rrect(self, cx, cy, rx, ry, radius, fill=None, outline=None, width=1.0):
        self._for(fill).rounded_rectangle(self._box(cx, cy, rx, ry), radius * _SS, fill=fill,
                                          outline=outline, width=round(width * _SS))

    def poly(self, pts, fill):
        self._for(fill).polygon(self._pts(pts), fill=fill)

    def line(self, pts, fill, width):  # round joints only where corners are sharp (few points)
        self._for(fill).line(self._pts(pts), fill=fill, width=max(1, round(width * _SS)),
                             joint="curve" if len(pts) <= 4 else None)


def _curve(cx, xs, ys):
    return list(zip(cx + xs, ys))


def _face_outline(g, n=48):
    """Head outline: elliptic forehead, superelliptic jaw (square for men), tapered chin."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    lower = s > 0
    e = np.where(lower, 2 / g.square, 1.0)
    x = g.a * np.sign(c) * np.abs(c) ** e * np.where(lower, 1 - g.taper * s, 1)
    y = np.where(lower, g.b_bot, g.b_top) * np.sign(s) * np.abs(s) ** e
    return _curve(g.cx, x, g.cy + y)


_BG_GRID = np.mgrid[0:6, 0:5] / np.array([5.0, 4.0])[:, None, None]


def _background(p, rng) -> Image.Image:
    """Muted two-colour gradient with soft blotches, built tiny and upsampled (cheap, smooth)."""
    c1, c2 = rng.integers(0, 256, size=(2, 3))
    grey = rng.integers(40, 220)
    c1, c2 = grey + 0.45 * (c1 - grey), grey + 0.45 * (c2 - grey)
    yy, xx = _BG_GRID
    ang = p.bg_angle * 2 * np.pi
    t = np.clip(0.5 + (xx - 0.5) * np.cos(ang) + (yy - 0.5) * np.sin(ang), 0, 1)[..., None]
    bg = c1 + (c2 - c1) * t + rng.normal(0, 16, size=t.shape[:2] + (3,))
    small = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    return small.resize((_W // 2, _H // 2), Image.BICUBIC).resize((_W * _SS, _H * _SS), Image.NEAREST)


def render_face(attributes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """attributes: (40,) +1/-1 in CELEBA_ATTRIBUTES order -> (218, 178, 3) uint8 RGB image."""
    on = dict(zip(CELEBA_ATTRIBUTES, (np.asarray(attributes) > 0).tolist()))
    p = SimpleNamespace(**dict(zip(_RANDOM_FIELDS, rng.random(len(_RANDOM_FIELDS)).tolist())))
    img = _background(p, rng)
    pen = _Pen(img)

    # Geometry (1x pixels): face centre x, eye line y, scale, half-width, forehead/jaw heights.
    male, s = on["Male"], 0.9 + 0.2 * p.scale
    g = SimpleNamespace(cx=89 + 8 * (p.jx - 0.5), ey=111 + 8 * (p.jy - 0.5), s=s,
                        a=s * (47 + 3 * male + 4 * on["Chubby"] - 3 * on["Oval_Face"]),
                        b_top=62 * s, b_bot=s * (72 + 3 * male + 4 * on["Oval_Face"]),
                        square=3.2 if male else 2.0, taper=0.0 if male else 0.18)
    g.cy = g.ey + 4 * s
    g.long_hair = not male and not on["Bald"]

    # Colours.
    skin = _palette(_PALE, p.skin) if on["Pale_Skin"] else _palette(_SKIN, p.skin ** 1.4)
    if not on["Young"]:
        skin = _mix(skin, (150, 140, 130), 0.12)
    hair_name = next((h for h in _HAIR_COLOURS if on[h]), "Brown_Hair")
    hair = _shade(_HAIR[hair_name], 0.85 + 0.3 * p.hair)
    if not on["Young"] and hair_name != "Gray_Hair":
        hair = _mix(hair, (170, 170, 168), 0.25)
    if hair_name in ("Black_Hair", "Brown_Hair") and sum(skin) < 420:  # keep hair visible
        hair = _shade(hair, 0.55)
    g.skin, g.hair, g.beard = skin, hair, _shade(hair, 0.8)
    g.brow = _shade(hair, 0.7) if hair_name in ("Blond_Hair", "Gray_Hair") else hair

    _body(pen, g, on, p)
    _head(pen, g, on, p)
    outline = _face_outline(g)
    pen.poly(outline, skin)
    _skin_details(pen, g, on)
    _eyes(pen, g, on, p)
    _nose(pen, g, on)
    if on["5_o_Clock_Shadow"]:
        _beard(img, outline, g, _mix(g.beard, (90, 90, 100), 0.5) + (40,), goatee=False)
    if not on["No_Beard"]:
        _beard(img, outline, g, g.beard, goatee=on["Goatee"])
    _mouth(pen, g, on, p)
    _hair_front(pen, g, on, p)
    _accessories(pen, g, on, p)

    img = img.reduce(_SS)
    if on["Blurry"]:
        img = img.filter(ImageFilter.BoxBlur(1.2))
    return np.array(img)


def _body(pen, g, on, p):
    """Long hair hanging behind the head, shoulders, neck, necktie, necklace."""
    cx, ey, s = g.cx, g.ey, g.s
    if g.long_hair:
        ys = np.linspace(ey - 10 * s, ey + 70 + 40 * p.hair_len, 12)
        wave = (3.5 * s if on["Wavy_Hair"] else 0.0) * np.sin(ys / (9 * s) + 6 * p.wave)
        half = g.a + 8 * s + 12 * s * np.sqrt((ys - ys[0]) / (ys[-1] - ys[0]))
        pen.poly(_curve(cx, wave - half, ys) + _curve(cx, wave + half, ys)[::-1], g.hair)
    clothes = colorsys.hsv_to_rgb(p.clothes_h, 0.5, 0.25 + 0.6 * p.clothes_v)
    pen.ellipse(cx, _H + 30, 98 * s, 58, fill=tuple(int(255 * v) for v in clothes))
    if on["Wearing_Necktie"]:
        pen.poly([(cx - 14, ey + 86), (cx, ey + 96), (cx + 14, ey + 86), (cx + 8, _H), (cx - 8, _H)],
                 (245, 245, 245))
        pen.poly([(cx - 5, ey + 93), (cx + 5, ey + 93), (cx + 7, _H), (cx - 7, _H)], _pick(_HATS, p.tie))
    pen.rrect(cx, ey + 80 * s, 21 * s, 40 * s, 10 * s, fill=_shade(g.skin, 0.82))
    if on["Wearing_Necklace"]:
        pen.line([(cx - 20 * s, ey + 78 * s), (cx, ey + 92 * s), (cx + 20 * s, ey + 78 * s)],
                 (230, 200, 90), 1.5)


def _head(pen, g, on, p):
    """Hair volume (long, short or none), or the bald dome with optional side hair; ears."""
    cx, cy, s, a = g.cx, g.cy, g.s, g.a
    if on["Bald"]:
        if p.fringe < 0.7:  # hair low on the sides only
            for start, end in ((10, 200), (340, 370)):
                pen.chord(cx, cy - 6 * s, a + 5 * s, g.b_top + 6 * s, start, end, g.hair)
        pen.ellipse(cx, cy - 6 * s, a + 3 * s, g.b_top + 4 * s, fill=g.skin)
        pen.ellipse(cx - 12 * s, cy - 48 * s, 14 * s, 8 * s, fill=(255, 255, 255, 60))  # shine
    elif g.long_hair:
        pen.ellipse(cx, cy - 8 * s, a + 9 * s, g.b_top + 14 * s, fill=g.hair)
    elif not on["Wearing_Hat"]:  # short hair, down to the ears
        pen.chord(cx, cy - 8 * s, a + 6 * s, g.b_top + 14 * s, 172, 368, g.hair)
    for k in (-1, 1):
        pen.ellipse(cx + k * (a - 1), g.ey + 8 * s, 6 * s, 12 * s, fill=_shade(g.skin, 0.82))


def _skin_details(pen, g, on):
    """Cheeks (blush, highlights), double chin, wrinkles."""
    cx, ey, s = g.cx, g.ey, g.s
    for k in (-1, 1):
        if on["High_Cheekbones"]:
            pen.ellipse(cx + k * 27 * s, ey + 17 * s, 10 * s, 5 * s, fill=(255, 255, 255, 45))
        if on["Rosy_Cheeks"] or on["Heavy_Makeup"]:
            pen.ellipse(cx + k * 28 * s, ey + 24 * s, 10 * s, 7 * s,
                        fill=(230, 60, 80, 100 if on["Rosy_Cheeks"] else 60))
    if on["Double_Chin"]:
        chin = g.cy + g.b_bot
        pen.line([(cx - 18 * s, chin - 2 * s), (cx, chin + 5 * s), (cx + 18 * s, chin - 2 * s)],
                 _shade(g.skin, 0.75), 2.0)
    if not on["Young"]:
        wrinkle = _shade(g.skin, 0.7, 140)
        for dy in (34, 41):
            pen.line([(cx - 18 * s, ey - dy * s), (cx, ey - (dy + 2) * s), (cx + 18 * s, ey - dy * s)],
                     wrinkle, 1.0)
        for k in (-1, 1):
            pen.line([(cx + k * 10 * s, ey + 27 * s), (cx + k * 18 * s, ey + 42 * s)], wrinkle, 1.2)


def _eyes(pen, g, on, p):
    """Eye shadow, bags, whites, iris, pupil, catchlight, lid line, eyebrows."""
    ey, s = g.ey, g.s
    ry = (2.8 if on["Narrow_Eyes"] else 4.4) * s
    gaze = (p.gaze - 0.5) * 2.5 * s
    for k in (-1, 1):
        ex = g.cx + k * 19 * s
        if on["Heavy_Makeup"]:
            pen.ellipse(ex, ey - 4 * s, 11 * s, 7 * s, fill=_pick(_EYESHADOW, p.shadow) + (150,))
        if on["Bags_Under_Eyes"]:
            pen.ellipse(ex, ey + 6 * s, 8 * s, 3.5 * s, fill=_shade(g.skin, 0.6, 90))
        pen.ellipse(ex, ey, 8.5 * s, ry, fill=(242, 240, 234))
        pen.ellipse(ex + gaze, ey, 3.8 * s, min(3.8 * s, ry), fill=_pick(_IRIS, p.eye))
        pen.ellipse(ex + gaze, ey, 1.8 * s, min(1.8 * s, ry), fill=(10, 8, 8))
        pen.ellipse(ex + gaze + 1.2 * s, ey - 1.2 * s, 0.8 * s, 0.8 * s, fill=(255, 255, 255))
        pen.line([(ex - 9 * s, ey + 0.5 * s), (ex - 4 * s, ey - ry), (ex + 4 * s, ey - ry),
                  (ex + 9 * s, ey + 0.5 * s)], (25, 18, 15), 2.2 if on["Heavy_Makeup"] else 1.3)
        arch, by = (6 if on["Arched_Eyebrows"] else 3) * s, ey - (11 + 2 * p.brow) * s
        pen.line([(ex - k * 10 * s, by + 1 * s), (ex + k * 1 * s, by - arch), (ex + k * 11 * s, by + 1.5 * s)],
                 g.brow, (5.0 if on["Bushy_Eyebrows"] else 3.0) * s)


def _nose(pen, g, on):
    cx, s = g.cx, g.s
    ns = s * (1.3 if on["Big_Nose"] else 1.0)
    tip = g.ey + (25 + 2 * on["Pointy_Nose"]) * s
    pen.line([(cx - 4 * s, g.ey + 4 * s), (cx - 5 * ns, tip - 3 * s)], _shade(g.skin, 0.75, 110), 1.5)
    pen.ellipse(cx, tip, 7 * ns, 4 * ns, fill=_shade(g.skin, 0.8, 90))
    pen.ellipse(cx, tip - 1.5 * s, 3.5 * ns, 2.5 * ns, fill=_shade(g.skin, 1.1, 90))
    for k in (-1, 1):
        pen.ellipse(cx + k * 3.5 * ns, tip + 1.5 * s, 1.8 * ns, 1.1 * ns, fill=_shade(g.skin, 0.45))


def _beard(img, outline, g, colour, goatee):
    """Hair-coloured region over jaw and chin (goatee: only around the mouth and chin)."""
    cx, ey, s, a = g.cx, g.ey, g.s, g.a
    x0, y0 = int(cx - a - 12), int(ey + 10)  # masks only over the lower face: cheaper
    mask = Image.new("L", (int(2 * a + 24) * _SS, 100 * _SS), 0)
    pen = _Pen(mask, origin=(x0, y0))
    pen.poly(outline, 255)
    if goatee:
        keep = Image.new("L", mask.size, 0)
        _Pen(keep, origin=(x0, y0)).ellipse(cx, ey + 58 * s, 20 * s, 28 * s, fill=255)
        mask = ImageChops.multiply(mask, keep)
    else:  # clear above a curve: high at the jaw, just below the mouth in the centre
        xs = np.linspace(-a - 12, a + 12, 15)
        top = ey + 16 * s + 34 * s * np.clip(1 - (xs / a) ** 2, 0, 1)
        pen.poly(_curve(cx, xs, top) + [(cx + a + 12, y0), (cx - a - 12, y0)], 0)
    if len(colour) == 4:
        mask = mask.point(lambda v: v * colour[3] // 255)
    img.paste(colour[:3], (x0 * _SS, y0 * _SS), mask=mask)


def _mouth(pen, g, on, p):
    """Mustache and lips; smiling widens, curves up, shows teeth; open shows a dark mouth."""
    cx, s, my = g.cx, g.s, g.ey + 45 * g.s
    if on["Mustache"]:
        pen.poly([(cx - 17 * s, my - s), (cx - 12 * s, my - 11 * s), (cx, my - 12 * s),
                  (cx + 12 * s, my - 11 * s), (cx + 17 * s, my - s), (cx, my - 6 * s)], g.beard)
    lip = _pick(_LIPSTICK, p.lip) if on["Wearing_Lipstick"] else _mix(_shade(g.skin, 0.8), (170, 70, 70), 0.35)
    smile, open_ = on["Smiling"], on["Mouth_Slightly_Open"]
    w = s * (13 + 2 * p.mouth + 6 * smile)
    thick = (1.4 if on["Big_Lips"] else 1.0) * s
    xs = np.linspace(-w, w, 11)
    bulge = 1 - (xs / w) ** 2
    mid = my - (7 * s if smile else 0.0) * (xs / w) ** 2  # corners up when smiling
    if smile or open_:
        upper = mid - 1.5 * s * bulge
        lower = mid + (3 + 5 * open_ + 3 * smile) * s * bulge
        teeth = np.minimum(upper + (3.5 if open_ else 9) * s * bulge, lower)
        pen.poly(_curve(cx, xs, upper) + _curve(cx, xs, lower)[::-1], (60, 18, 24))
        pen.poly(_curve(cx, 0.85 * xs, upper) + _curve(cx, 0.85 * xs, teeth)[::-1], (242, 238, 228))
        pen.line(_curve(cx, xs, upper - 0.8 * s), lip, 2.2 * thick)
        pen.line(_curve(cx, xs, lower + 1.0 * s), lip, 3.0 * thick)
        if smile:  # creases at the corners
            for k in (-1, 1):
                pen.line([(cx + k * (w + s), mid[0] - 5 * s), (cx + k * (w + 3 * s), mid[0] + s)],
                         _shade(g.skin, 0.7, 150), 1.3 * s)
    else:
        pen.poly(_curve(cx, xs, mid - 3 * thick * bulge) + _curve(cx, xs, mid + 4 * thick * bulge)[::-1], lip)
        pen.line(_curve(cx, xs, mid), _shade(lip, 0.5), 1.2 * s)


def _hair_front(pen, g, on, p):
    """Hair over the forehead down to the hairline (receding, or bangs), locks, sideburns."""
    cx, ey, s, a = g.cx, g.ey, g.s, g.a
    if not on["Bald"] and not on["Wearing_Hat"]:
        rx, ry, hcy = a + 6 * s, g.b_top + 14 * s, g.cy - 8 * s
        t = np.linspace(np.pi, 2 * np.pi, 17)
        xs = np.linspace(rx, -rx, 17)
        if on["Bangs"]:
            line = ey - 17 * s + 2.5 * s * np.cos(xs / (3 * s))
        else:
            top = ey - (52 if on["Receding_Hairline"] else 38 + 4 * p.hairline) * s
            line = top + (hcy - top) * np.abs(xs / rx) ** (2 if on["Receding_Hairline"] else 4)
        pen.poly(_curve(cx, rx * np.cos(t), hcy + ry * np.sin(t)) + _curve(cx, xs, np.minimum(line, hcy)),
                 g.hair)
    for k in (-1, 1):
        if g.long_hair:  # locks falling beside the face, over the ears
            lock = ((0, -42), (-5, -24), (-8, 8), (-4, 44), (3, 64), (15, 66), (16, 20), (4, -30))
            pen.poly([(cx + k * (a + dx * s), ey + dy * s) for dx, dy in lock], g.hair)
        elif on["Sideburns"]:
            burn = ((1, -14), (-7, -14), (-7, 22), (1, 26))
            pen.poly([(cx + k * (a + dx * s), ey + dy * s) for dx, dy in burn], g.beard)


def _accessories(pen, g, on, p):
    cx, ey, s, a = g.cx, g.ey, g.s, g.a
    if on["Eyeglasses"]:
        frame = _pick(_FRAMES, p.frame)
        lens = (20, 20, 25, 225) if p.sun < 0.25 else (225, 235, 255, 40 if sum(g.skin) > 420 else 100)
        for k in (-1, 1):
            pen.rrect(cx + k * 19 * s, ey + s, 13 * s, 10 * s, 5 * s, fill=lens, outline=frame, width=3.2 * s)
            pen.line([(cx + k * 31 * s, ey - 4 * s), (cx + k * (a + 2 * s), ey - s)], frame, 3.0 * s)
        pen.line([(cx - 7 * s, ey - 2 * s), (cx, ey - 4 * s), (cx + 7 * s, ey - 2 * s)], frame, 3.0 * s)
    if on["Wearing_Hat"]:
        hat = _pick(_HATS, p.hat)
        pen.chord(cx, ey - 40 * s, a + 7 * s, 48 * s, 180, 360, hat)
        pen.rrect(cx, ey - 40 * s, a + 14 * s, 6 * s, 4 * s, fill=_shade(hat, 0.75))
    if on["Wearing_Earrings"]:
        for k in (-1, 1):
            pen.ellipse(cx + k * (a + s), ey + 22 * s, 2.5 * s, 2.5 * s,
                        fill=(235, 200, 80) if p.earring < 0.6 else (210, 210, 220))


# --- Dataset on disk -------------------------------------------------------------------------


def dataset_dir(root: Path | str, num_images: int, seed: int) -> Path:
    """The cache folder for these parameters: root / celeba-synthetic-v<V>-n<N>-seed<S>."""
    return Path(root) / f"celeba-synthetic-v{SYNTHETIC_VERSION}-n{num_images}-seed{seed}"


def _is_complete(folder: Path, num_images: int) -> bool:
    attr = folder / "list_attr_celeba.txt"
    if not (attr.is_file() and (folder / "list_eval_partition.txt").is_file()):
        return False
    with open(attr) as f:
        count = f.readline().strip()
    return count == str(num_images) and (folder / "img_align_celeba" / f"{num_images:06d}.jpg").is_file()


def _render_chunk(task) -> int:
    """Worker: render and save images start, start+1, ... (1-based numbers). Returns the count."""
    img_dir, seed, start, rows = task
    for i, row in enumerate(rows, start=start):
        pixels = render_face(row, np.random.default_rng([seed, i]))
        Image.fromarray(pixels).save(os.path.join(img_dir, f"{i:06d}.jpg"), quality=95)
    return len(rows)


def _write_lists(folder: Path, table: np.ndarray) -> None:
    """list_attr_celeba.txt (values right-aligned in 2 chars) and list_eval_partition.txt."""
    n = len(table)
    names = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    rows = [name + "".join(f" {v:2d}" for v in row) for name, row in zip(names, table.tolist())]
    (folder / "list_attr_celeba.txt").write_text("\n".join([str(n), " ".join(CELEBA_ATTRIBUTES)] + rows) + "\n")
    n_train, n_valid = round(0.8 * n), round(0.1 * n)
    split = [0] * n_train + [1] * n_valid + [2] * (n - n_train - n_valid)
    (folder / "list_eval_partition.txt").write_text("".join(f"{f} {k}\n" for f, k in zip(names, split)))


def generate(root: Path | str, num_images: int, seed: int, workers: int | None = None,
             progress: bool = True) -> Path:
    """Make sure the dataset exists under dataset_dir(...); generate it if not; return that folder.

    It is built in a temporary sibling folder renamed into place at the end, so a folder with the
    final name is always complete. workers=1 renders in this process; more render in a child
    interpreter's 'spawn' pool (see the module docstring for why not in this process).
    """
    if not isinstance(num_images, (int, np.integer)) or num_images < 1:
        raise UserError(f"synthetic data: num_images must be a positive integer, got {num_images!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserError(f"synthetic data: seed must be a non-negative integer, got {seed!r}")
    num_images, seed = int(num_images), int(seed)
    final = dataset_dir(root, num_images, seed)
    if final.exists():
        if _is_complete(final, num_images):
            return final
        raise DataError(f"{final} exists but is not a complete synthetic dataset; delete it to regenerate")
    workers = max(1, workers or os.cpu_count() or 1)
    if workers == 1:
        _draw(final, num_images, seed, 1, progress)
    else:
        _draw_in_child(final, num_images, seed, workers, progress)
    return final


def _draw(final: Path, num_images: int, seed: int, workers: int, progress: bool) -> None:
    """Render every image and both lists into a temporary sibling of ``final``, then rename it."""
    table = sample_attributes(np.random.default_rng(seed), num_images)
    tmp = _temporary(final, os.getpid())
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        (tmp / "img_align_celeba").mkdir(parents=True)
        size = max(1, min(50, math.ceil(num_images / (8 * workers))))  # small chunks: balanced end
        tasks = [(str(tmp / "img_align_celeba"), seed, start + 1, table[start:start + size])
                 for start in range(0, num_images, size)]
        done = 0
        # A terminal gets one line redrawn; a log file (CI, nohup) one line per tenth, not hundreds of redraws.
        tty = sys.stderr.isatty()
        lead, tail = ("\r", "") if tty else ("", "\n")
        for count in _run(tasks, workers):
            before, done = done, done + count
            if progress and (tty or done * 10 // num_images > before * 10 // num_images):
                print(f"{lead}generating synthetic faces: {done}/{num_images}", end=tail, file=sys.stderr, flush=True)
        if progress and tty:
            print(file=sys.stderr)
        _write_lists(tmp, table)
        try:
            os.rename(tmp, final)
        except OSError:  # another process finished the same dataset first
            if not _is_complete(final, num_images):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:  # including KeyboardInterrupt: leave nothing half-written
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _temporary(final: Path, pid: int) -> Path:
    return final.with_name(f"{final.name}.tmp-{pid}")


#: What the child interpreter runs: no ``__main__`` file, so its spawn workers import only this module.
_CHILD = "import sys; from homogan.data.synthetic import _child_main; sys.exit(_child_main(sys.argv[1:]))"


def _draw_in_child(final: Path, num_images: int, seed: int, workers: int, progress: bool) -> None:
    """:func:`_draw` in a child interpreter (its stderr is ours: the progress lines show as usual)."""
    package_parent = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    args = [str(final), str(num_images), str(seed), str(workers), "1" if progress else "0"]
    child = subprocess.Popen([sys.executable, "-c", _CHILD, *args], env=env, stdin=subprocess.DEVNULL)
    try:
        code = child.wait()
    except BaseException:  # Ctrl-C reaches the child too (same process group); SIGTERM and others may not
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        shutil.rmtree(_temporary(final, child.pid), ignore_errors=True)
        raise
    if code != 0:
        shutil.rmtree(_temporary(final, child.pid), ignore_errors=True)
        raise DataError(f"drawing the synthetic faces into {final} failed (the drawing process exited with code "
                        f"{code}; the lines above say why)")
    if not _is_complete(final, num_images):
        raise DataError(f"drawing the synthetic faces: {final} is incomplete after the drawing process finished")


def _child_main(argv: list[str]) -> int:
    """Entry point of the child interpreter started by :func:`_draw_in_child`."""
    final, num_images, seed, workers, progress = argv
    # SIGTERM from the parent: unwind through _draw's clean-up instead of dying with a half-written folder.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        _draw(Path(final), int(num_images), int(seed), int(workers), progress == "1")
    except KeyboardInterrupt:
        return 130
    return 0


def _run(tasks, workers):
    """Yield each task's image count as it finishes."""
    if workers == 1:
        yield from map(_render_chunk, tasks)
        return
    with multiprocessing.get_context("spawn").Pool(min(workers, len(tasks))) as pool:
        yield from pool.imap_unordered(_render_chunk, tasks)
