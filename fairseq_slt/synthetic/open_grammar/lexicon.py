"""The lexicon of the open grammar (:mod:`.grammar_open`): glosses, their categories and the
English words they are translated as.

Two domains share the times, places and numbers: weather forecasts (as PHOENIX-2014-T) and
everyday actions (as CSL-Daily / How2Sign). Gloss names are labels of signs; a gloss's English
depends on its context (``STRONG`` is ``heavy`` rain but ``strong`` wind, ``HE`` is ``he`` or
``him``, ``BUY`` is ``buy``, ``buys``, ``bought`` or ``buying``).
"""

from typing import Dict, Tuple

# time glosses: (English, tense, position); position "front" opens the sentence, "end" closes it
TIMES: Dict[str, Tuple[str, str, str]] = {
    "YESTERDAY": ("yesterday", "past", "front"),
    "TODAY": ("today", "future", "front"),
    "TOMORROW": ("tomorrow", "future", "front"),
    "WEEKEND": ("weekend", "future", "end"),  # at the weekend
    "LAST-WEEK": ("last week", "past", "end"),
    "NEXT-WEEK": ("next week", "future", "end"),
    **{d.upper(): (d, "future", "end") for d in (  # on monday
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")},
}
WEATHER_TIMES = tuple(TIMES)
# everyday-domain only: habitual and progressive present
LIFE_TIMES: Dict[str, Tuple[str, str, str]] = {
    "EVERYDAY": ("every day", "habitual", "end"),
    "NOW": ("now", "progressive", "end"),
}
DAYPARTS = {"MORNING": "morning", "AFTERNOON": "afternoon", "EVENING": "evening", "NIGHT": "night"}

# regions: (preposition, name); also the destinations "to berlin" of the everyday domain
COMPASS = {
    "NORTH": "north", "SOUTH": "south", "EAST": "east", "WEST": "west",
    "NORTHEAST": "northeast", "NORTHWEST": "northwest", "SOUTHEAST": "southeast", "SOUTHWEST": "southwest",
}
CITIES = {c.upper(): c for c in (
    "berlin", "hamburg", "munich", "vienna", "zurich", "paris", "london", "dublin", "madrid", "rome",
    "oslo", "prague")}
REGIONS: Dict[str, Tuple[str, str]] = {
    **{g: ("in the", w) for g, w in COMPASS.items()},
    "CENTRE": ("in the", "centre"), "COAST": ("along the", "coast"), "MOUNTAINS": ("in the", "mountains"),
    "VALLEYS": ("in the", "valleys"), "ISLANDS": ("on the", "islands"), "HILLS": ("over the", "hills"),
    "LOWLANDS": ("in the", "lowlands"), "LAKES": ("around the", "lakes"), "BORDER": ("near the", "border"),
    "EVERYWHERE": ("", "everywhere"),
    **{g: ("in", w) for g, w in CITIES.items()},
}

# weather: (noun, plural, adjective for STRONG, adjective for WEAK)
WEATHER: Dict[str, Tuple[str, bool, str, str]] = {
    "RAIN": ("rain", False, "heavy", "light"),
    "SNOW": ("snow", False, "heavy", "light"),
    "SUN": ("sunshine", False, "bright", "hazy"),
    "FOG": ("fog", False, "thick", "patchy"),
    "MIST": ("mist", False, "dense", "thin"),
    "WIND": ("wind", False, "strong", "gentle"),
    "STORM": ("storms", True, "severe", "short"),
    "THUNDER": ("thunderstorms", True, "violent", "isolated"),
    "HAIL": ("hail", False, "large", "small"),
    "SLEET": ("sleet", False, "heavy", "light"),
    "DRIZZLE": ("drizzle", False, "steady", "light"),
    "SHOWER": ("showers", True, "heavy", "scattered"),
    "CLOUD": ("clouds", True, "thick", "broken"),
    "FROST": ("frost", False, "hard", "light"),
    "ICE": ("ice", False, "widespread", "patchy"),
    "GALE": ("gales", True, "severe", "moderate"),
}
INTENSITY = ("STRONG", "WEAK")
DEGREE_ADVERBS = {"VERY": "very", "QUITE": "quite"}
TEMPERATURE_ADJECTIVES = {g.upper(): g for g in (
    "warm", "cold", "hot", "mild", "cool", "dry", "humid", "freezing", "wet")}
TRENDS = {"RISE": ("rise", "rose", "risen"), "FALL": ("fall", "fell", "fallen")}
BLOW = ("blow", "blew", "blown")

UNITS = {g.upper(): g for g in (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")}
TENS = {"TWENTY": "twenty", "THIRTY": "thirty", "FORTY": "forty"}

# everyday domain ------------------------------------------------------------------------------
# pronouns: (subject form, object form, person: "1", "2", "3" singular or "pl")
PRONOUNS = {
    "I": ("i", "me", "1"), "YOU": ("you", "you", "2"), "HE": ("he", "him", "3"),
    "SHE": ("she", "her", "3"), "WE": ("we", "us", "pl"), "THEY": ("they", "them", "pl"),
}
POSSESSIVES = {"MY": "my", "YOUR": "your", "HIS": "his", "HER": "her", "OUR": "our", "THEIR": "their"}
# persons: (noun, plural, needs a possessive)
PERSONS: Dict[str, Tuple[str, bool, bool]] = {
    **{g.upper(): (g, False, True) for g in (
        "mother", "father", "sister", "brother", "grandmother", "grandfather", "son", "daughter",
        "uncle", "aunt", "friend", "husband", "wife")},
    "PARENTS": ("parents", True, True),
    **{g.upper(): (g, False, False) for g in (
        "teacher", "doctor", "nurse", "driver", "student", "neighbour", "boss", "farmer", "baker")},
    "CHILDREN": ("children", True, False),
}

# objects by class: {gloss: (singular, plural; None: mass noun, or a class always with "the")}
OBJECTS: Dict[str, Dict[str, Tuple[str, str]]] = {
    "food": {
        "APPLE": ("apple", "apples"), "EGG": ("egg", "eggs"), "CAKE": ("cake", "cakes"),
        "SANDWICH": ("sandwich", "sandwiches"), "BANANA": ("banana", "bananas"),
        "ORANGE": ("orange", "oranges"), "TOMATO": ("tomato", "tomatoes"),
        "BREAD": ("bread", None), "RICE": ("rice", None), "SOUP": ("soup", None),
        "CHEESE": ("cheese", None), "MEAT": ("meat", None), "FISH": ("fish", None),
    },
    "drink": {g.upper(): (g, None) for g in ("coffee", "tea", "milk", "water", "juice", "beer", "wine")},
    "text": {
        "BOOK": ("book", "books"), "NEWSPAPER": ("newspaper", "newspapers"), "LETTER": ("letter", "letters"),
        "MAGAZINE": ("magazine", "magazines"), "EMAIL": ("email", "emails"),
    },
    "thing": {
        "PHONE": ("phone", "phones"), "KEY": ("key", "keys"), "BAG": ("bag", "bags"),
        "TICKET": ("ticket", "tickets"), "UMBRELLA": ("umbrella", "umbrellas"),
        "COMPUTER": ("computer", "computers"), "JACKET": ("jacket", "jackets"), "PARCEL": ("parcel", "parcels"),
    },
    # always "the": take the bus, clean the house
    "vehicle": {g.upper(): (g, None) for g in ("bus", "train", "taxi", "car", "bike")},
    "household": {g.upper(): (g, None) for g in ("house", "room", "window", "door", "kitchen")},
    "media": {"FILM": ("film", "films"), "MATCH": ("match", "matches"), "NEWS": ("news", None)},
    # bare nouns: play football, learn french
    "game": {g.upper(): (g, None) for g in ("football", "tennis", "chess", "cards")},
    "subject": {g.upper(): (g, None) for g in ("english", "french", "maths", "music", "history")},
}

# places: (location preposition, name, destination preposition); HOME: at home / go home
PLACES: Dict[str, Tuple[str, str, str]] = {
    "SHOP": ("at the", "shop", "to the"), "MARKET": ("at the", "market", "to the"),
    "SCHOOL": ("at", "school", "to"), "OFFICE": ("at the", "office", "to the"),
    "HOSPITAL": ("at the", "hospital", "to the"), "STATION": ("at the", "station", "to the"),
    "LIBRARY": ("in the", "library", "to the"), "PARK": ("in the", "park", "to the"),
    "BEACH": ("on the", "beach", "to the"), "MUSEUM": ("in the", "museum", "to the"),
    "BANK": ("at the", "bank", "to the"), "RESTAURANT": ("in the", "restaurant", "to the"),
    "CINEMA": ("at the", "cinema", "to the"), "GARDEN": ("in the", "garden", "into the"),
    "VILLAGE": ("in the", "village", "to the"), "POOL": ("in the", "pool", "to the"),
    "HOME": ("at", "home", ""),
}
PLACE_GROUPS = {
    "shopping": ("SHOP", "MARKET", "STATION", "VILLAGE"),
    "indoors": ("HOME", "OFFICE", "SCHOOL", "RESTAURANT", "LIBRARY", "HOSPITAL"),
    "outdoors": ("PARK", "GARDEN", "BEACH", "VILLAGE"),
    "work": ("OFFICE", "HOSPITAL", "SCHOOL", "BANK", "MARKET", "STATION", "HOME"),
    "destination": ("SHOP", "MARKET", "SCHOOL", "OFFICE", "HOSPITAL", "STATION", "LIBRARY", "PARK",
                    "BEACH", "MUSEUM", "BANK", "CINEMA", "VILLAGE", "POOL", "HOME"),
    "visit": ("MUSEUM", "MARKET", "VILLAGE", "LIBRARY", "HOSPITAL"),
    "water": ("BEACH", "POOL"),
}

# verbs: (base, 3rd person singular, past, -ing), object classes (empty: intransitive; "person",
# "visit": a person or a place), place role ("location", "destination" or None), place group,
# object preposition ("wait for the bus")
VERBS: Dict[str, Tuple[Tuple[str, str, str, str], Tuple[str, ...], str, str, str]] = {
    "BUY": (("buy", "buys", "bought", "buying"), ("food", "drink", "text", "thing"), "location", "shopping", ""),
    "SELL": (("sell", "sells", "sold", "selling"), ("food", "thing"), "location", "shopping", ""),
    "EAT": (("eat", "eats", "ate", "eating"), ("food",), "location", "indoors", ""),
    "DRINK": (("drink", "drinks", "drank", "drinking"), ("drink",), "location", "indoors", ""),
    "COOK": (("cook", "cooks", "cooked", "cooking"), ("food",), "location", "indoors", ""),
    "READ": (("read", "reads", "read", "reading"), ("text",), "location", "indoors", ""),
    "WRITE": (("write", "writes", "wrote", "writing"), ("text",), "location", "indoors", ""),
    "SEND": (("send", "sends", "sent", "sending"), ("text", "thing"), None, "", ""),
    "LOSE": (("lose", "loses", "lost", "losing"), ("thing",), "location", "outdoors", ""),
    "FIND": (("find", "finds", "found", "finding"), ("thing",), "location", "outdoors", ""),
    "FORGET": (("forget", "forgets", "forgot", "forgetting"), ("thing",), "location", "indoors", ""),
    "BRING": (("bring", "brings", "brought", "bringing"), ("food", "drink", "thing"), None, "", ""),
    "TAKE": (("take", "takes", "took", "taking"), ("vehicle",), None, "", ""),
    "WAIT": (("wait", "waits", "waited", "waiting"), ("vehicle",), None, "", "for"),
    "VISIT": (("visit", "visits", "visited", "visiting"), ("visit",), None, "", ""),
    "MEET": (("meet", "meets", "met", "meeting"), ("person",), "location", "outdoors", ""),
    "CALL": (("call", "calls", "called", "calling"), ("person",), None, "", ""),
    "HELP": (("help", "helps", "helped", "helping"), ("person",), "location", "indoors", ""),
    "WATCH": (("watch", "watches", "watched", "watching"), ("media",), "location", "indoors", ""),
    "PLAY": (("play", "plays", "played", "playing"), ("game",), "location", "outdoors", ""),
    "LEARN": (("learn", "learns", "learned", "learning"), ("subject",), "location", "indoors", ""),
    "TEACH": (("teach", "teaches", "taught", "teaching"), ("subject",), "location", "indoors", ""),
    "CLEAN": (("clean", "cleans", "cleaned", "cleaning"), ("household", "vehicle"), None, "", ""),
    "OPEN": (("open", "opens", "opened", "opening"), ("household",), None, "", ""),
    "CLOSE": (("close", "closes", "closed", "closing"), ("household",), None, "", ""),
    "FIX": (("fix", "fixes", "fixed", "fixing"), ("vehicle", "household"), None, "", ""),
    "WASH": (("wash", "washes", "washed", "washing"), ("vehicle",), None, "", ""),
    "GO": (("go", "goes", "went", "going"), (), "destination", "destination", ""),
    "COME": (("come", "comes", "came", "coming"), (), "destination", "destination", ""),
    "DRIVE": (("drive", "drives", "drove", "driving"), (), "destination", "destination", ""),
    "WALK": (("walk", "walks", "walked", "walking"), (), "destination", "destination", ""),
    "WORK": (("work", "works", "worked", "working"), (), "location", "work", ""),
    "STAY": (("stay", "stays", "stayed", "staying"), (), "location", "indoors", ""),
    "SLEEP": (("sleep", "sleeps", "slept", "sleeping"), (), "location", "indoors", ""),
    "SWIM": (("swim", "swims", "swam", "swimming"), (), "location", "water", ""),
}
MODALS = {"CAN": "can", "MUST": "must", "WANT": "want"}
OBJECT_NUMBERS = ("ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE", "TEN",
                  "ELEVEN", "TWELVE")

# glosses without a table of their own
FUNCTION_GLOSSES = {
    "NOT": "negation", "Q": "question", "WHERE": "question", "WHEN": "question", "WHO": "question",
    "WHAT": "question", "MAYBE": "modality", "PROBABLY": "modality", "THEN": "connective",
    "BUT": "connective", "SO": "connective", "TEMPERATURE": "temperature", "DEGREE": "unit",
    "MINUS": "number", "BLOW": "verb",
}


def gloss_categories() -> Dict[str, str]:
    """Every gloss of the open grammar and its category (``day``, ``region``, ``verb``, ...)."""
    cats: Dict[str, str] = {}

    def add(glosses, category):
        for g in glosses:
            if g in cats and cats[g] != category:
                raise ValueError(f"gloss {g} is in categories {cats[g]} and {category}")
            cats[g] = category

    add(TIMES, "day")
    add(LIFE_TIMES, "day")
    add(DAYPARTS, "daypart")
    add(REGIONS, "region")
    add(WEATHER, "weather")
    add(INTENSITY, "intensity")
    add(DEGREE_ADVERBS, "degree")
    add(TEMPERATURE_ADJECTIVES, "temperature")
    add(TRENDS, "trend")
    add(UNITS, "number")
    add(TENS, "number")
    add(PRONOUNS, "person")
    add(POSSESSIVES, "possessive")
    add(PERSONS, "person")
    for nouns in OBJECTS.values():
        add(nouns, "object")
    add(PLACES, "place")
    add(VERBS, "verb")
    add(MODALS, "modality")
    for g, c in FUNCTION_GLOSSES.items():
        add([g], c)
    return cats


GLOSS_CATEGORIES = gloss_categories()
