"""The labels of the labelled sounds catalog: its sources, and a short human label for each
recording, made from its file name (translated where the name is Czech) and its folder."""

from __future__ import annotations

from .sources import SOURCE_INFO

SOUND_SOURCES = {
    "ovos": dict(SOURCE_INFO["ovos"], used_for="10 animal recordings (copied unchanged)"),
    "lmms": dict(SOURCE_INFO["lmms"], used_for="LMMS instrument/drum/effect/loop/waveform samples"),
    "freedesktop": dict(SOURCE_INFO["freedesktop"], used_for="desktop event sounds"),
    "sound-icons": {
        "name": "sound-icons (Debian package sound-icons, Brailcom speech-dispatcher sound icons)",
        "debian_package": "sound-icons",
        "url": "https://www.freebsoft.org/pub/projects/sound-icons/",
        "license": "GPL-2.0-or-later (Brailcom, o.p.s. 2003)",
        "used_for": "32 short instrument/signal WAV sounds",
    },
}

# The 10 CC0 recordings; labels follow the BigSoundBank titles listed in the wheel's CREDITS.md.
OVOS_LABELS = {
    "cat": "cat meowing",
    "cow": "cow mooing",
    "dog": "two dogs barking",
    "duck": "ducks",
    "frog": "frogs",
    "horse": "horse neighing",
    "owl": "tawny owl",
    "pig": "grumpy pig",
    "rooster": "rooster crowing",
    "sheep": "sheep",
}

LMMS_FOLDER_LABELS = {
    "basses": "basses",
    "bassloops": "bass loops",
    "beats": "beats",
    "drums": "drums",
    "effects": "effects",
    "instruments": "instruments",
    "latin": "latin",
    "misc": "miscellaneous",
    "shapes": "waveform shapes",
    "stringsnpads": "strings and pads",
    "waveforms": "waveforms",
}
# Single-cycle oscillator waveforms, mostly a few milliseconds long.
LMMS_WAVEFORM_FOLDERS = {"shapes", "waveforms"}

# Readable labels for LMMS sample names (file name without its trailing number); names not
# listed here become their words (underscores -> spaces).
LMMS_LABELS = {
    # basses
    "basses/bass_acid": "acid bass",
    "basses/bass_hard": "hard bass",
    "basses/bass_punch": "punch bass",
    "basses/matrix1000_pluck": "Matrix-1000 synth pluck",
    "basses/synth_acid": "acid synth",
    # bass loops
    "bassloops/briff": "bass riff",
    "bassloops/tb303": "TB-303 bass line",
    # beats
    "beats/909beat": "909 drum machine beat",
    "beats/break": "breakbeat",
    "beats/jungle": "jungle beat",
    "beats/rave_hihat": "rave hi-hat",
    # drums
    "drums/bassdrum": "bass drum",
    "drums/bassdrum_acoustic": "acoustic bass drum",
    "drums/clap": "hand clap",
    "drums/clav": "claves",
    "drums/crash": "crash cymbal",
    "drums/hihat_closed": "closed hi-hat",
    "drums/hihat_foot_pedal": "hi-hat foot pedal",
    "drums/hihat_opened": "open hi-hat",
    "drums/kick": "bass drum kick",
    "drums/kick_distorted": "distorted bass drum kick",
    "drums/kick_hard": "hard bass drum kick",
    "drums/kick_hardcore": "hardcore bass drum kick",
    "drums/kick_hiphop": "hip hop bass drum kick",
    "drums/kick_long": "long bass drum kick",
    "drums/kick_soft": "soft bass drum kick",
    "drums/nasty_rim": "nasty rimshot",
    "drums/nasty_snare": "nasty snare drum",
    "drums/ride": "ride cymbal",
    "drums/rim": "rimshot",
    "drums/sidestick": "side stick",
    "drums/snare": "snare drum",
    "drums/snare_acoustic": "acoustic snare drum",
    "drums/snare_electro": "electro snare drum",
    "drums/snare_harsh": "harsh snare drum",
    "drums/snare_hiphop": "hip hop snare drum",
    "drums/snare_muffled": "muffled snare drum",
    "drums/snare_rim": "snare drum rimshot",
    "drums/snare_short": "short snare drum",
    "drums/tom": "tom drum",
    "drums/tom_hi": "high tom drum",
    "drums/tom_low": "low tom drum",
    "drums/tom_mid": "mid tom drum",
    "drums/wood": "wood block",
    # effects
    "effects/explode": "explosion",
    # instruments
    "instruments/bassslap": "slap bass",
    "instruments/e_organ": "electric organ",
    "instruments/e_piano_accord": "electric piano chord",
    "instruments/steel_guitar_heavy_distorted": "heavily distorted steel guitar",
    "instruments/steel_guitar_medium_distorted": "medium distorted steel guitar",
    "instruments/steel_guitar_slight_distorted": "slightly distorted steel guitar",
    "instruments/violin_fingered": "fingered violin",
    # misc
    "misc/metalish_dong": "metallic dong",
    # strings and pads
    "stringsnpads/juno_pad": "Juno synth pad",
    "stringsnpads/korg_poly6_drone": "Korg Poly-6 drone",
    "stringsnpads/nord_ambient": "Nord ambient pad",
    # shapes (single-cycle waveforms)
    "shapes/additive": "additive synthesis waveform",
    "shapes/low_sine": "low sine wave",
    "shapes/moog": "Moog waveform",
    "shapes/roundbass": "round bass waveform",
    "shapes/roundsaw": "round sawtooth wave",
    "shapes/saw+sine": "sawtooth plus sine wave",
    "shapes/sine_dist": "distorted sine wave",
    "shapes/smooth_inv_saw": "smooth inverted sawtooth wave",
    "shapes/smooth_inv_saw_dist": "distorted smooth inverted sawtooth wave",
    "shapes/technobass": "techno bass waveform",
    "shapes/technosynth": "techno synth waveform",
    "shapes/vowel_a": "vowel a waveform",
    "shapes/vowel_u": "vowel u waveform",
    # waveforms
    "waveforms/10saw": "sawtooth wave",
    "waveforms/10sine": "sine wave",
    "waveforms/10sqr": "square wave",
    "waveforms/10tri": "triangle wave",
    "waveforms/analogsqr": "analog square wave",
    "waveforms/fmsaw": "FM sawtooth wave",
    "waveforms/fmsine": "FM sine wave",
    "waveforms/halfsine": "half sine wave",
    "waveforms/lfo_trancegate_quarter": "LFO trance gate, quarter notes",
    "waveforms/lfo_trancegate_sawdecay_quarter": "LFO trance gate with sawtooth decay, quarter notes",
    "waveforms/lfo_trancegate_sinedecay_quarter": "LFO trance gate with sine decay, quarter notes",
    "waveforms/lfo_trancegate_triplet_half": "LFO trance gate, half-note triplets",
    "waveforms/lfo_trancegate_triplet_quarter": "LFO trance gate, quarter-note triplets",
    "waveforms/lfo_trancegate_whole": "LFO trance gate, whole notes",
    "waveforms/modsqr": "modulated square wave",
    "waveforms/saw": "sawtooth wave",
    "waveforms/sinesaw": "sine-sawtooth wave",
    "waveforms/w2_addsyn": "additive synthesis wave",
    "waveforms/w2_angrysaw": "angry sawtooth wave",
    "waveforms/w2_hexagon": "hexagon wave",
    "waveforms/w2_invsine": "inverted sine wave",
    "waveforms/w2_invsineabs": "absolute inverted sine wave",
    "waveforms/w2_invsinehalf": "half inverted sine wave",
    "waveforms/w2_noisy": "noisy wave",
    "waveforms/w2_rad": "rad wave",
    "waveforms/w2_sawsine": "sawtooth-sine wave",
    "waveforms/w2_sharp": "sharp wave",
    "waveforms/w2_w-wave": "W wave",
}

# sound-icons: labels for the file names (number stripped); the notes say where a name was
# translated (the package is Czech) and why.
SOUND_ICON_LABELS = {
    "canary-long": ("canary, long", None),
    "cembalo": ("harpsichord", "cembalo = harpsichord"),
    "chord": ("chord", None),
    "cockchafer-gentleman": ("cockchafer gentleman", None),
    "cymbaly": ("cymbals", "Czech/Polish 'cymbaly'; broadband high-frequency content consistent with cymbals"),
    "electric-piano": ("electric piano", None),
    "glass-water": ("glass water", None),
    "guitar": ("guitar", None),
    "gummy-cat": ("gummy cat", None),
    "klavichord": ("clavichord", "klavichord = clavichord"),
    "percussion": ("percussion", None),
    "piano": ("piano", None),
    "pipe": ("pipe", None),
    "pisk-down": ("falling whistle", "Czech 'pisk' = whistle/squeak; pitch falls (measured)"),
    "pisk-down-cink": ("falling whistle with a clink", "Czech 'pisk' = whistle/squeak, 'cink' = clink; pitch falls"),
    "pisk-up": ("rising whistle", "Czech 'pisk' = whistle/squeak; pitch rises (measured)"),
    "pisk-up-cink": ("rising whistle with a clink", "Czech 'pisk' = whistle/squeak, 'cink' = clink"),
    "prompt": ("prompt", None),
    "trumpet": ("trumpet", None),
    "violoncello": ("cello", "violoncello = cello"),
    "xylofon": ("xylophone", "xylofon = xylophone"),
}

FREEDESKTOP_LABELS = {"message-new-instant": "new instant message", "trash-empty": "empty trash"}

FREEDESKTOP_UNLISTED = "not listed in debian/copyright (package: CC-BY-3.0 / CC-BY-SA-3.0 / GPL-2+ per file)"
