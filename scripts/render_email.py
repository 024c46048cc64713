"""Render a delivery email as a person sees it: the HTML body and the PDF report, as PNGs.

    python scripts/render_email.py --to bob@btl.com --out docs/images
    python scripts/render_email.py var/outbox/new/<file> --out /tmp/renders --width 390

Reads one message from the local SMTP server's Maildir (the newest one to ``--to``, or the
file given), puts its inline ``cid:`` charts back into the HTML as files, and screenshots the
body with headless Chromium at a phone width (and a desktop width); the PDF attachment is
rendered page by page with ``pdftoppm``. Needs the Debian packages ``chromium`` and
``poppler-utils``. Writes ``<prefix>_phone.png``, ``<prefix>_desktop.png`` and
``<prefix>_pdf_<n>.png`` (palette PNGs, small enough to commit).
"""

from __future__ import annotations

import argparse
import email
import email.policy
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TALL = 6000  # px: the window is this tall, then cut at the end of the content


def find_message(outbox: Path, to: str) -> Path:
    """The newest message in the Maildir addressed to ``to``."""
    hits = []
    for path in (outbox / "new").glob("*"):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if to.lower() in str(msg["To"]).lower():
            hits.append((path.stat().st_mtime, path))
    if not hits:
        raise SystemExit(f"no message to {to} in {outbox / 'new'}")
    return max(hits)[1]


def unpack(message: Path, work: Path) -> tuple[Path, list[Path]]:
    """The HTML body (with cid: images as local files) and the PDF attachments, under work/."""
    msg = email.message_from_bytes(message.read_bytes(), policy=email.policy.default)
    html = msg.get_body(preferencelist=("html",)).get_content()
    for part in msg.walk():
        cid = part.get("Content-ID")
        if cid and part.get_content_maintype() == "image":
            cid = cid.strip("<>")
            name = re.sub(r"[^A-Za-z0-9._-]", "_", cid) + "." + part.get_content_subtype()
            (work / name).write_bytes(part.get_content())
            html = html.replace(f"cid:{cid}", name)
    body = work / "body.html"
    body.write_text(html, encoding="utf-8")
    pdfs = []
    for part in msg.iter_attachments():
        if part.get_content_type() == "application/pdf":
            pdfs.append(work / Path(part.get_filename()).name)
            pdfs[-1].write_bytes(part.get_content())
    return body, pdfs


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    raise SystemExit("headless Chromium is needed: apt-get install -y chromium")


def screenshot(html: Path, out: Path, width: int, scale: float) -> None:
    """Full-page screenshot of ``html`` at a ``width`` CSS px window."""
    subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--allow-file-access-from-files",
            f"--force-device-scale-factor={scale}",
            f"--window-size={width},{TALL}",
            f"--screenshot={out}",
            html.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    trim(out)


def trim(png: Path) -> None:
    """Cut the empty page background below the content."""
    from PIL import Image

    img = Image.open(png).convert("RGB")
    w, h = img.size
    bg = img.getpixel((w - 1, h - 1))
    bottom = h
    px = img.load()
    while bottom > 1 and all(px[x, bottom - 1] == bg for x in range(0, w, 4)):
        bottom -= 1
    img.crop((0, 0, w, min(h, bottom + 16))).save(png)


def shrink(png: Path) -> None:
    """A 256-colour palette PNG: a fraction of the size, no visible loss on text and charts."""
    from PIL import Image

    img = Image.open(png).convert("RGB")
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        png, optimize=True
    )


def render_pdf(pdf: Path, out_dir: Path, prefix: str, dpi: int) -> list[Path]:
    if not shutil.which("pdftoppm"):
        raise SystemExit("pdftoppm is needed: apt-get install -y poppler-utils")
    stem = out_dir / f"{prefix}_pdf"
    subprocess.run(["pdftoppm", "-png", "-r", str(dpi), str(pdf), str(stem)], check=True)
    pages = sorted(out_dir.glob(f"{prefix}_pdf-*.png"))
    out = []
    for i, page in enumerate(pages, 1):
        target = out_dir / f"{prefix}_pdf_{i}.png"
        page.replace(target)
        out.append(target)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("message", nargs="?", type=Path, help="a message file (default: newest to --to)")
    p.add_argument("--to", default="bob@btl.com", help="recipient whose newest message to render")
    p.add_argument(
        "--outbox",
        type=Path,
        default=Path(os.environ.get("MF_OUTBOX_DIR", REPO / "var" / "outbox")),
    )
    p.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    p.add_argument("--prefix", default="delivery")
    p.add_argument("--width", type=int, default=390, help="phone width in CSS px (iPhone 12-15)")
    p.add_argument("--desktop-width", type=int, default=900)
    p.add_argument(
        "--scale", type=float, default=2.0, help="device pixel ratio of the phone render"
    )
    p.add_argument("--dpi", type=int, default=80, help="resolution of the PDF pages")
    args = p.parse_args(argv)

    message = args.message or find_message(args.outbox, args.to)
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        body, pdfs = unpack(message, Path(tmp))
        phone = args.out / f"{args.prefix}_phone.png"
        screenshot(body, phone, args.width, args.scale)
        desktop = args.out / f"{args.prefix}_desktop.png"
        screenshot(body, desktop, args.desktop_width, 1.0)
        written += [phone, desktop]
        for pdf in pdfs[:1]:
            written += render_pdf(pdf, args.out, args.prefix, args.dpi)
    for png in written:
        shrink(png)
        print(f"{png}  {png.stat().st_size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
