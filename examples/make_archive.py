#!/usr/bin/env python3
"""Generate a small, deterministic, synthetic camera-trap archive.

Usage::

    python examples/make_archive.py [OUT_DIR]

OUT_DIR defaults to ``examples/archive`` (next to this script).  Labels are
written to ``labels.csv`` in the *parent* of OUT_DIR (i.e. ``examples/labels.csv``
for the default), with paths relative to OUT_DIR.

Only numpy and Pillow are used, every random draw comes from a fixed seed, and
the output is byte-for-byte reproducible for a given numpy/Pillow/libjpeg.

What it produces (see examples/README.md for the full table):

* ``<site>/<camera>/IMG_NNNN.JPG`` -- 2 sites, 5 cameras, 44 JPEGs
  (one camera writes a lowercase ``.jpg`` extension);
* colour day frames (per-camera scene: sky, treeline, textured ground,
  trunks, bushes) with or without an animal (deer / fox / boar);
* IR-style night frames (grayscale, vignetted, noisy, eye-shine), saved either
  as true single-channel ``L`` JPEGs or as RGB JPEGs that are only *nearly*
  gray (+-2 levels of per-channel noise), depending on the camera;
* bursts of 3-5 near-identical frames 1 s apart, events minutes to hours apart,
  spanning 2024-05-01 .. 2024-05-04;
* two blurry frames, one very dark (dusk, under-exposed) and one over-exposed
  frame;
* EXIF: IFD0 Make (271), Model (272), DateTime (306) and Exif-IFD
  DateTimeOriginal (36867); RECONYX cameras pad Make with trailing spaces;
* each file's mtime is set to its capture time (interpreted as UTC).
"""

from __future__ import annotations

import calendar
import csv
import os
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

JPEG_QUALITY = 85
EXIF_IFD = 0x8769
TAG_MAKE, TAG_MODEL, TAG_DATETIME = 271, 272, 306
TAG_DATETIME_ORIGINAL = 36867


# --------------------------------------------------------------------------
# Archive description
# --------------------------------------------------------------------------

@dataclass
class Event:
    """One trigger of a camera: a single frame or a burst (frames 1 s apart)."""

    start: str                  # "YYYY-MM-DD HH:MM:SS" (camera local time)
    n: int = 1                  # number of frames (>1 => burst)
    kind: str = "day"           # "day" | "night" | "dusk"
    species: str | None = None  # None => empty frame
    x0: float = 0.5             # animal start position (fraction of width)
    y0: float = 0.75            # animal foot line (fraction of height)
    dx: int = 6                 # animal shift per burst frame (pixels)
    facing: int = 1             # +1 right, -1 left
    exposure: float = 1.0       # day exposure multiplier
    offset: float = 0.0         # day exposure offset (levels)
    blur: float = 0.0           # Gaussian blur radius applied to the frame(s)


@dataclass
class Camera:
    site: str
    name: str
    make: str
    model: str
    size: tuple[int, int]       # (width, height)
    ext: str                    # ".JPG" or ".jpg"
    first_number: int           # number of the first IMG_NNNN in the folder
    night_mode: str             # "L" or "RGB" (nearly gray)
    seed: int
    events: list[Event] = field(default_factory=list)


CAMERAS: list[Camera] = [
    Camera("siteA", "cam01", "RECONYX   ", "HC600 HYPERFIRE", (640, 480), ".JPG", 1, "L", 101, [
        Event("2024-05-01 06:12:03", 4, "day", "deer", x0=0.30, y0=0.78, dx=7),
        Event("2024-05-01 09:47:30", 1, "day", None),
        Event("2024-05-01 13:05:12", 1, "day", None, exposure=1.9, offset=60),   # over-exposed
        Event("2024-05-01 22:31:44", 3, "night", "fox", x0=0.62, y0=0.72, dx=-6, facing=-1),
        Event("2024-05-02 02:18:09", 1, "night", None),
    ]),
    Camera("siteA", "cam02", "Bushnell", "119836C", (800, 600), ".JPG", 137, "RGB", 202, [
        Event("2024-05-01 07:40:21", 5, "day", "boar", x0=0.20, y0=0.80, dx=6),
        Event("2024-05-01 16:02:55", 1, "day", None, blur=4.0),                    # blurry (fogged lens)
        Event("2024-05-02 21:14:07", 1, "night", "boar", x0=0.55, y0=0.82, facing=-1),
        Event("2024-05-03 03:55:40", 3, "night", "fox", x0=0.35, y0=0.74, dx=5),
    ]),
    Camera("siteA", "cam03", "Browning", "BTC-8E", (640, 480), ".jpg", 1, "L", 303, [
        Event("2024-05-02 05:58:16", 3, "day", "deer", x0=0.70, y0=0.76, dx=-5, facing=-1),
        Event("2024-05-02 06:09:44", 1, "day", None),
        Event("2024-05-02 17:44:38", 1, "day", "fox", x0=0.40, y0=0.85),
        Event("2024-05-03 01:07:51", 1, "night", None),
    ]),
    Camera("siteB", "cam01", "RECONYX   ", "HC600 HYPERFIRE", (640, 480), ".JPG", 412, "L", 404, [
        Event("2024-05-02 08:21:19", 4, "day", "deer", x0=0.45, y0=0.80, dx=8),
        Event("2024-05-02 12:59:03", 1, "day", None),
        Event("2024-05-02 20:42:26", 1, "dusk", "deer", x0=0.60, y0=0.74, facing=-1,
              exposure=0.16),                                                     # very dark
        Event("2024-05-03 00:36:12", 3, "night", "boar", x0=0.30, y0=0.78, dx=4),
        Event("2024-05-03 15:10:47", 1, "day", "deer", x0=0.55, y0=0.77, blur=2.0),  # slightly out of focus
    ]),
    Camera("siteB", "cam02", "SPYPOINT", "FORCE-20", (800, 600), ".JPG", 1, "RGB", 505, [
        Event("2024-05-03 06:33:58", 3, "day", "fox", x0=0.25, y0=0.82, dx=6),
        Event("2024-05-03 06:41:27", 1, "day", None),
        Event("2024-05-03 23:48:21", 3, "night", "deer", x0=0.65, y0=0.76, dx=-5, facing=-1),
        Event("2024-05-04 04:20:33", 1, "night", None),
        Event("2024-05-04 07:05:14", 1, "day", "boar", x0=0.50, y0=0.83, facing=-1),
    ]),
]


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int,
                 aspect: float = 1.0) -> np.ndarray:
    """Low-frequency noise (approx. N(0,1)) by bilinear upsampling a coarse grid.

    ``aspect`` > 1 stretches features vertically (grass-like)."""
    gh = max(2, int(h / (cell * aspect)) + 2)
    gw = max(2, int(w / cell) + 2)
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    img = Image.fromarray(grid, mode="F").resize((w, h), Image.Resampling.BILINEAR)
    a = np.asarray(img, dtype=np.float32)
    return a / (a.std() + 1e-6)


def lerp(c0, c1, t):
    c0 = np.asarray(c0, dtype=np.float32)
    c1 = np.asarray(c1, dtype=np.float32)
    return c0 + (c1 - c0) * t


# --------------------------------------------------------------------------
# Scene (static background per camera)
# --------------------------------------------------------------------------

@dataclass
class Scene:
    rgb: np.ndarray       # float32 HxWx3
    sky: np.ndarray       # float32 HxW in [0,1]
    horizon: int


def make_scene(cam: Camera) -> Scene:
    rng = np.random.default_rng(cam.seed)
    w, h = cam.size
    yy = np.arange(h, dtype=np.float32)[:, None]

    # --- sky ------------------------------------------------------------
    horizon = int(h * rng.uniform(0.30, 0.45))
    sky_top = np.array([rng.uniform(70, 110), rng.uniform(120, 150), rng.uniform(185, 225)])
    sky_bot = np.array([rng.uniform(185, 215), rng.uniform(200, 220), rng.uniform(215, 235)])
    t = np.clip(yy / max(horizon, 1), 0, 1)[..., None]
    sky = lerp(sky_top, sky_bot, t) * np.ones((h, w, 1), np.float32)
    clouds = np.clip(smooth_noise(rng, h, w, 90) * 0.9 - 0.3, 0, None)[..., None]
    sky = sky + clouds * 22

    # --- ground ---------------------------------------------------------
    g_base = np.array([rng.uniform(95, 130), rng.uniform(95, 125), rng.uniform(50, 70)])
    g_alt = np.array([rng.uniform(60, 85), rng.uniform(95, 125), rng.uniform(40, 60)])
    patch = np.clip(smooth_noise(rng, h, w, 70) * 0.5 + 0.5, 0, 1)[..., None]
    ground = lerp(g_base, g_alt, patch)
    depth = np.clip((yy - horizon) / max(h - horizon, 1), 0, 1)[..., None]
    blades = smooth_noise(rng, h, w, 3, aspect=2.5)[..., None]          # grass blades
    ground = ground + blades * (4 + 9 * depth)
    ground = ground + smooth_noise(rng, h, w, 25)[..., None] * 8
    ground = ground * (0.80 + 0.30 * depth)                               # nearer => brighter

    # --- treeline with wavy top ----------------------------------------
    xs = np.arange(w, dtype=np.float32)
    wave = (np.sin(xs / rng.uniform(25, 45) + rng.uniform(0, 6)) * rng.uniform(4, 9)
            + np.sin(xs / rng.uniform(7, 12)) * 3
            + smooth_noise(rng, 1, w, 15)[0] * 5)
    tl_height = rng.uniform(0.10, 0.18) * h
    tl_top = horizon - tl_height + wave
    treeline_mask = ((yy >= tl_top[None, :]) & (yy < horizon)).astype(np.float32)
    tl_col = np.array([rng.uniform(35, 55), rng.uniform(60, 80), rng.uniform(35, 50)])
    treeline = tl_col + smooth_noise(rng, h, w, 8)[..., None] * 10

    sky_mask = (yy < np.minimum(tl_top[None, :], horizon)).astype(np.float32)
    rgb = np.where(sky_mask[..., None] > 0, sky, ground)
    rgb = np.where(treeline_mask[..., None] > 0, treeline, rgb)

    # --- trunks, foliage and bushes (drawn with PIL) --------------------
    img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    shape_mask = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(img)
    mdraw = ImageDraw.Draw(shape_mask)

    n_trees = int(rng.integers(2, 5))
    for _ in range(n_trees):
        cx = rng.uniform(0.03, 0.97) * w
        base = rng.uniform(horizon + 0.15 * (h - horizon), h * 1.02)
        near = (base - horizon) / (h - horizon)
        tw = (8 + 40 * near) * rng.uniform(0.7, 1.3)
        bark = tuple(int(v) for v in (rng.uniform(55, 85), rng.uniform(45, 65), rng.uniform(30, 45)))
        lean = rng.uniform(-0.06, 0.06) * h
        poly = [(cx - tw / 2, base), (cx + tw / 2, base),
                (cx + tw * 0.35 + lean, -5), (cx - tw * 0.35 + lean, -5)]
        draw.polygon(poly, fill=bark)
        mdraw.polygon(poly, fill=255)
        # a darker side for some volume
        draw.polygon([(cx + tw * 0.15, base), (cx + tw / 2, base),
                      (cx + tw * 0.35 + lean, -5), (cx + tw * 0.1 + lean, -5)],
                     fill=tuple(int(v * 0.7) for v in bark))
        # a branch
        by = rng.uniform(0.05, 0.3) * h
        bdir = 1 if rng.uniform() < 0.5 else -1
        draw.line([(cx + lean * (1 - by / base), by),
                   (cx + bdir * rng.uniform(40, 110), by - rng.uniform(20, 60))],
                  fill=bark, width=max(2, int(tw / 5)))

    n_foliage = int(rng.integers(2, 6))
    for _ in range(n_foliage):
        fx, fy = rng.uniform(0, w), rng.uniform(-0.1 * h, 0.18 * h)
        fr = rng.uniform(0.08, 0.2) * w
        col = tuple(int(v) for v in (rng.uniform(30, 55), rng.uniform(65, 95), rng.uniform(30, 45)))
        for _k in range(6):
            ox, oy = rng.uniform(-fr, fr), rng.uniform(-fr / 2, fr / 2)
            r = fr * rng.uniform(0.4, 0.8)
            box = [fx + ox - r, fy + oy - r * 0.7, fx + ox + r, fy + oy + r * 0.7]
            draw.ellipse(box, fill=col)
            mdraw.ellipse(box, fill=255)

    n_bush = int(rng.integers(2, 5))
    for _ in range(n_bush):
        bx = rng.uniform(0, w)
        by = rng.uniform(horizon + 0.05 * (h - horizon), h * 0.98)
        near = (by - horizon) / (h - horizon)
        br = (15 + 70 * near) * rng.uniform(0.7, 1.3)
        base_col = np.array([rng.uniform(35, 60), rng.uniform(75, 110), rng.uniform(30, 50)])
        for _k in range(int(rng.integers(5, 10))):
            ox, oy = rng.uniform(-br, br), rng.uniform(-br * 0.6, 0.1 * br)
            r = br * rng.uniform(0.35, 0.65)
            col = tuple(int(v) for v in base_col * rng.uniform(0.8, 1.2))
            box = [bx + ox - r, by + oy - r * 0.8, bx + ox + r, by + oy + r * 0.5]
            draw.ellipse(box, fill=col)
            mdraw.ellipse(box, fill=255)

    # leaf texture on the drawn shapes
    out = np.asarray(img, dtype=np.float32).copy()
    sm = np.asarray(shape_mask, dtype=np.float32)[..., None] / 255.0
    out = out + sm * smooth_noise(rng, h, w, 4)[..., None] * 7
    sky_mask = sky_mask * (1 - sm[..., 0])
    return Scene(rgb=out, sky=sky_mask, horizon=horizon)


# --------------------------------------------------------------------------
# Animals
# --------------------------------------------------------------------------

SPECIES = {
    #         body colour      dark (legs)      body w, h   leg len  head
    "deer": dict(col=(150, 105, 62), dark=(95, 68, 42), bw=1.00, bh=0.42, leg=0.62, head=0.22),
    "fox":  dict(col=(196, 98, 38), dark=(60, 38, 25), bw=0.62, bh=0.26, leg=0.26, head=0.17),
    "boar": dict(col=(72, 60, 50), dark=(45, 38, 32), bw=0.95, bh=0.50, leg=0.28, head=0.28),
}


def draw_animal(w: int, h: int, horizon: int, species: str, cx: float, foot_y: float,
                facing: int, phase: int) -> tuple[Image.Image, tuple[float, float]]:
    """Return an RGBA layer with the animal and the (x, y) of its eye."""
    sp = SPECIES[species]
    near = np.clip((foot_y - horizon) / max(h - horizon, 1), 0.05, 1.0)
    s = (0.10 + 0.22 * near) * w          # body length in pixels
    bw, bh = sp["bw"] * s, sp["bh"] * s
    leg = sp["leg"] * s
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    col = sp["col"] + (255,)
    dark = sp["dark"] + (255,)
    body_bottom = foot_y - leg
    body = [cx - bw / 2, body_bottom - bh, cx + bw / 2, body_bottom]
    f = facing

    # legs (4), gait depends on phase
    lw = max(2, s * (0.07 if species != "deer" else 0.05))
    swing = (phase % 2) * 2 - 1
    for i, lx in enumerate((-0.32, -0.22, 0.25, 0.35)):
        x = cx + lx * bw
        kick = swing * (1 if i % 2 else -1) * s * 0.04
        d.polygon([(x - lw / 2, body_bottom - bh * 0.3), (x + lw / 2, body_bottom - bh * 0.3),
                   (x + lw / 2 + kick, foot_y), (x - lw / 2 + kick, foot_y)],
                  fill=dark if i in (0, 3) else tuple(int(c * 0.85) for c in sp["dark"]) + (255,))

    # tail
    tx = cx - f * bw / 2
    if species == "fox":
        d.ellipse([tx - f * s * 0.22 - s * 0.26, body_bottom - bh * 0.85,
                   tx - f * s * 0.22 + s * 0.26, body_bottom - bh * 0.25], fill=col)
        tip = tx - f * s * 0.44
        d.ellipse([tip - s * 0.07, body_bottom - bh * 0.75, tip + s * 0.07, body_bottom - bh * 0.4],
                  fill=(235, 230, 220, 255))
    elif species == "deer":
        d.ellipse([tx - s * 0.06, body_bottom - bh * 0.95, tx + s * 0.06, body_bottom - bh * 0.55],
                  fill=(230, 225, 215, 255))
    else:
        d.line([(tx, body_bottom - bh * 0.7), (tx - f * s * 0.12, body_bottom - bh * 0.2)],
               fill=dark, width=max(1, int(s * 0.03)))

    # body + belly shade
    d.ellipse(body, fill=col)
    d.ellipse([body[0] + bw * 0.1, body_bottom - bh * 0.45, body[2] - bw * 0.1, body_bottom],
              fill=tuple(int(c * 0.82) for c in sp["col"]) + (255,))
    if species == "boar":  # bristly back hump
        d.ellipse([cx - bw * 0.25, body_bottom - bh * 1.15, cx + bw * 0.35, body_bottom - bh * 0.5],
                  fill=dark)

    # neck + head
    hx = cx + f * bw * 0.48
    hs = sp["head"] * s
    if species == "deer":
        neck_top = (hx + f * s * 0.12, body_bottom - bh - s * 0.24)
        d.polygon([(hx - f * s * 0.12, body_bottom - bh * 0.7), (hx + f * s * 0.05, body_bottom - bh * 0.5),
                   (neck_top[0] + f * s * 0.06, neck_top[1] + hs * 0.3),
                   (neck_top[0] - f * s * 0.08, neck_top[1])], fill=col)
        hy = neck_top[1]
        hcx = neck_top[0] + f * hs * 0.3
    elif species == "fox":
        hy = body_bottom - bh * 1.0
        hcx = hx + f * hs * 0.5
        d.polygon([(hx - f * s * 0.1, body_bottom - bh * 0.9), (hx - f * s * 0.05, body_bottom - bh * 0.2),
                   (hcx, hy + hs * 0.4), (hcx, hy - hs * 0.3)], fill=col)
    else:  # boar: head low, wedge-shaped
        hy = body_bottom - bh * 0.45
        hcx = hx + f * hs * 0.4
    d.ellipse([hcx - hs * 0.6, hy - hs * 0.45, hcx + hs * 0.6, hy + hs * 0.45], fill=col)
    snout_x = hcx + f * hs * (0.95 if species != "deer" else 0.8)
    d.polygon([(hcx + f * hs * 0.2, hy - hs * 0.3), (snout_x, hy + hs * 0.05),
               (snout_x, hy + hs * 0.25), (hcx + f * hs * 0.2, hy + hs * 0.4)], fill=col)
    d.ellipse([snout_x - hs * 0.08, hy + hs * 0.02, snout_x + hs * 0.08, hy + hs * 0.22],
              fill=(25, 20, 18, 255))
    # ears
    for ex in (-0.25, 0.05):
        ebase = hcx + f * hs * ex
        elen = hs * (0.8 if species != "boar" else 0.45)
        d.polygon([(ebase - hs * 0.12, hy - hs * 0.3), (ebase + hs * 0.12, hy - hs * 0.3),
                   (ebase - f * hs * 0.1, hy - hs * 0.3 - elen)], fill=dark)
    eye = (hcx + f * hs * 0.25, hy - hs * 0.08)
    d.ellipse([eye[0] - hs * 0.06, eye[1] - hs * 0.06, eye[0] + hs * 0.06, eye[1] + hs * 0.06],
              fill=(15, 12, 10, 255))
    layer = layer.filter(ImageFilter.GaussianBlur(0.8))
    return layer, eye


# --------------------------------------------------------------------------
# Frame rendering
# --------------------------------------------------------------------------

def render_frame(cam: Camera, scene: Scene, ev: Event, k: int,
                 rng: np.random.Generator) -> tuple[Image.Image, str]:
    w, h = cam.size
    base = Image.fromarray(np.clip(scene.rgb, 0, 255).astype(np.uint8), "RGB")
    eye = None
    alpha = None
    if ev.species:
        cx = ev.x0 * w + ev.dx * k + rng.normal(0, 1.0)
        fy = ev.y0 * h + rng.normal(0, 0.7)
        layer, eye = draw_animal(w, h, scene.horizon, ev.species, cx, fy, ev.facing, k)
        # soft contact shadow
        shadow = Image.new("RGBA", (w, h), (0, 0, 0, 0))
        s = (0.10 + 0.22 * np.clip((fy - scene.horizon) / (h - scene.horizon), 0.05, 1)) * w
        ImageDraw.Draw(shadow).ellipse([cx - s * 0.55, fy - s * 0.05, cx + s * 0.55, fy + s * 0.06],
                                       fill=(0, 0, 0, 70))
        base = Image.alpha_composite(base.convert("RGBA"), shadow.filter(ImageFilter.GaussianBlur(4)))
        base = Image.alpha_composite(base, layer).convert("RGB")
        alpha = np.asarray(layer.getchannel("A"), dtype=np.float32) / 255.0
    rgb = np.asarray(base, dtype=np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)

    if ev.kind in ("day", "dusk"):
        gain = ev.exposure * (1.0 + rng.normal(0, 0.01))
        if ev.kind == "dusk":  # warm, low light
            rgb = rgb * np.array([1.05, 0.92, 0.80], np.float32)
        out = rgb * gain + ev.offset
        # mild lens vignette
        r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
        out = out * (1 - 0.12 * r2)[..., None]
        noise_sigma = 1.6 if ev.kind == "day" else 2.5
        out = out + rng.normal(0, noise_sigma, size=(h, w, 1)).astype(np.float32)
        out = np.clip(out, 0, 255).astype(np.uint8)
        img = Image.fromarray(out, "RGB")
        mode = "RGB"
    else:
        # IR: foliage reflects IR strongly, sky is black, flash falls off radially
        lum = 0.30 * rgb[..., 0] + 0.50 * rgb[..., 1] + 0.20 * rgb[..., 2]
        lum = 0.75 * lum + 1.1 * (rgb[..., 1] - 0.5 * (rgb[..., 0] + rgb[..., 2])).clip(0) + 25
        if alpha is not None:  # fur is fairly bright under IR
            lum = lum * (1 - alpha) + alpha * (1.1 * lum + 45)
        # distant things get little flash light; the sky none at all
        dist = np.clip(1.0 - 0.55 * np.clip((scene.horizon + 0.25 * h - yy) / (0.5 * h), 0, 1), 0, 1)
        lum = lum * dist
        lum = lum * (1 - scene.sky) + scene.sky * 10
        cy = h * 0.70
        r2 = ((xx - w / 2) / (0.60 * w)) ** 2 + ((yy - cy) / (0.80 * h)) ** 2
        flash = np.clip(1.15 - 0.85 * r2, 0.10, 1.15)
        g = lum * flash * (0.95 + rng.normal(0, 0.01))
        if eye is not None:  # eye-shine
            r = max(2.0, 0.006 * w)
            d2 = (xx - eye[0]) ** 2 + (yy - eye[1]) ** 2
            g = g + 230 * np.exp(-d2 / (2 * r * r))
        g = g + rng.normal(0, 3.2, size=(h, w)).astype(np.float32)
        g = np.clip(g, 0, 255)
        if cam.night_mode == "L":
            img = Image.fromarray(g.astype(np.uint8), "L")
            mode = "L"
        else:
            chroma = rng.integers(-2, 3, size=(h, w, 3)).astype(np.float32)
            out = np.clip(g[..., None] + chroma, 0, 255).astype(np.uint8)
            img = Image.fromarray(out, "RGB")
            mode = "RGB~gray"
    if ev.blur:
        img = img.filter(ImageFilter.GaussianBlur(ev.blur))
    return img, mode


def make_exif(cam: Camera, when: datetime) -> Image.Exif:
    exif = Image.Exif()
    stamp = when.strftime("%Y:%m:%d %H:%M:%S")
    exif[TAG_MAKE] = cam.make
    exif[TAG_MODEL] = cam.model
    exif[TAG_DATETIME] = stamp
    exif.get_ifd(EXIF_IFD)[TAG_DATETIME_ORIGINAL] = stamp
    return exif


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent
    out_dir = Path(argv[1]) if len(argv) > 1 else here / "archive"
    out_dir.mkdir(parents=True, exist_ok=True)
    labels_path = out_dir.resolve().parent / "labels.csv"

    rows: list[tuple[str, str]] = []
    summary = []
    for cam in CAMERAS:
        scene = make_scene(cam)
        folder = out_dir / cam.site / cam.name
        folder.mkdir(parents=True, exist_ok=True)
        number = cam.first_number
        rng = np.random.default_rng(cam.seed * 1000 + 7)
        n_day = n_night = n_burst = 0
        for ev in cam.events:
            t0 = datetime.strptime(ev.start, "%Y-%m-%d %H:%M:%S")
            n_burst += ev.n > 1
            for k in range(ev.n):
                when = t0 + timedelta(seconds=k)
                img, mode = render_frame(cam, scene, ev, k, rng)
                name = f"IMG_{number:04d}{cam.ext}"
                number += 1
                path = folder / name
                img.save(path, "JPEG", quality=JPEG_QUALITY, exif=make_exif(cam, when))
                ts = calendar.timegm(when.timetuple())
                os.utime(path, (ts, ts))
                rel = f"{cam.site}/{cam.name}/{name}"
                rows.append((rel, ev.species or "empty"))
                if ev.kind == "night":
                    n_night += 1
                else:
                    n_day += 1
        summary.append((f"{cam.site}/{cam.name}", n_day, n_night, n_burst))

    with open(labels_path, "w", newline="", encoding="utf-8") as fh:
        wr = csv.writer(fh, lineterminator="\n")
        wr.writerow(["path", "label"])
        wr.writerows(rows)

    total = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    for cam_id, nd, nn, nb in summary:
        print(f"{cam_id}: {nd + nn} frames ({nd} day, {nn} night), {nb} bursts")
    print(f"{len(rows)} images, {total / 1e6:.2f} MB in {out_dir}; labels -> {labels_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
