"""A seeded generator of simple Hebrew sentences (templates and lexicon written for tall_hf) whose last word is
predictable from the prefix to a known, moderate degree.

Four kinds of templates, mixed by `KIND_WEIGHTS`:
- `rule`: the last word follows from an earlier word by a fixed rule of the language (a fruit's colour, the day after
  a day, the opposite of an adjective, a profession's workplace, an animal's sound);
- `fact`: the last word is a fact about a person (home town, profession), drawn once per seed and repeated in every
  sentence about that person: an LLM learns it only by having read many sentences;
- `choice`: the last word is one of a few words with fixed, unequal probabilities;
- `free`: the last word is drawn uniformly from a large set.
A fifth kind, `agree`, comes in with `agreement_share`: a sentence about an unnamed person ("הוא" or "היא") whose last
word (a past-tense verb, an adjective, a participle or a profession) agrees in gender with the pronoun, its lemma
following from an earlier word by a rule. `GENDER_PAIRS` lists every (masculine, feminine) pair of forms the
generator writes, `NAME_PARTNERS` pairs the first names by gender.
Optional openings lengthen the sentences (5-30 words) without changing their last word.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

MALE_NAMES = "דני יוסי אבי עומר איתי נועם אורי גיל רון אלון משה דוד".split()
FEMALE_NAMES = "רותי מיכל נועה שירה תמר יעל מאיה הילה ליאת רונית דנה אורית".split()
SURNAMES = "כהן לוי מזרחי פרץ ביטון אברהם פרידמן שפירא גולן אזולאי".split()
CITIES = "ירושלים חיפה אילת טבריה נתניה עכו צפת רחובות הרצליה אשדוד אשקלון נהריה דימונה כרמיאל עפולה חדרה".split()
# profession (masculine, feminine) -> workplace, written with the preposition "ב".
PROFESSIONS = {
    ("רופא", "רופאה"): "במרפאה",
    ("מורה", "מורה"): "בכיתה",
    ("טבח", "טבחית"): "במטבח",
    ("טייס", "טייסת"): "במטוס",
    ("נגר", "נגרית"): "בנגרייה",
    ("אופה", "אופה"): "במאפייה",
    ("שוטר", "שוטרת"): "בתחנה",
    ("דייג", "דייגת"): "בנמל",
    ("חקלאי", "חקלאית"): "בשדה",
    ("ספר", "ספרית"): "במספרה",
    ("נהג", "נהגת"): "באוטובוס",
    ("גנן", "גננת"): "בגינה",
    ("ספרן", "ספרנית"): "בספרייה",
    ("מלצר", "מלצרית"): "במסעדה",
    ("מהנדס", "מהנדסת"): "במפעל",
    ("חשמלאי", "חשמלאית"): "בבניין",
}
FRUIT_COLOURS = {
    "התפוז": "כתום",
    "הבננה": "צהוב",
    "העגבנייה": "אדום",
    "המלפפון": "ירוק",
    "הלימון": "צהוב",
    "השזיף": "סגול",
    "החציל": "סגול",
    "התות": "אדום",
    "הגזר": "כתום",
    "הקוקוס": "חום",
    "האגס": "ירוק",
    "הדובדבן": "אדום",
}
DAYS = "ראשון שני שלישי רביעי חמישי שישי שבת".split()
OPPOSITES = [
    ("גדול", "קטן"),
    ("חם", "קר"),
    ("ארוך", "קצר"),
    ("גבוה", "נמוך"),
    ("חדש", "ישן"),
    ("מהיר", "איטי"),
    ("כבד", "קל"),
    ("רחב", "צר"),
    ("רטוב", "יבש"),
    ("חזק", "חלש"),
    ("יקר", "זול"),
    ("מלא", "ריק"),
    ("נקי", "מלוכלך"),
    ("רועש", "שקט"),
]
ANIMAL_SOUNDS = {
    "הכלב": "נובח",
    "החתול": "מיילל",
    "הפרה": "גועה",
    "האריה": "שואג",
    "הציפור": "מצייצת",
    "הסוס": "צוהל",
    "החמור": "נוער",
    "הנחש": "לוחש",
    "הדבורה": "מזמזמת",
    "התרנגול": "קורא",
}
SPREADS = {"חמאה": 0.4, "גבינה": 0.25, "ריבה": 0.15, "דבש": 0.1, "חומוס": 0.1}
WINTER = {"גשם": 0.6, "שלג": 0.25, "רוח": 0.15}
DRINKS = {"קפה": 0.5, "תה": 0.3, "מים": 0.2}
NOUNS = (
    "כדור ספר עץ בית ילד מכונית אופניים שולחן כיסא חלון דלת פרח ציור שעון מטרייה תיק כובע מכתב עיתון טלפון "
    "מחשב מנורה שטיח כוס צלחת מפתח בקבוק מעיל נעל ארגז חבל סולם מגבת כרית סל סירה מצלמה גיטרה תוף"
).split()
OPENINGS = [
    "ביום {day} בבוקר",
    "בשבוע שעבר",
    "כמו שכולם יודעים",
    "לפי מה ש{other} {told}",
    "אחרי הרבה זמן",
    "בלי שום ספק",
    "כפי שכתוב בעיתון המקומי",
    "למרות מה שאמרו השכנים",
    "בערב שקט אחד",
    "כבר מהיום הראשון",
    "בזמן החופשה הגדולה",
]
KIND_WEIGHTS = {"rule": 0.25, "fact": 0.3, "choice": 0.2, "free": 0.25}

# The `agree` kind's lexicon, every word as its (masculine, feminine) forms.
PRONOUN = ("הוא", "היא")
AGREEMENT_TIMES = [
    "אתמול בערב",
    "הבוקר",
    "בשבוע שעבר",
    "בחודש שעבר",
    *(f"ביום {day} {part}" for day in DAYS for part in ("בבוקר", "בצהריים", "בערב")),
]
# Verbs in the past tense, in pairs of opposites: "היא לא ישבה אלא עמדה".
OPPOSITE_VERBS = [
    (("ישב", "ישבה"), ("עמד", "עמדה")),
    (("צחק", "צחקה"), ("בכה", "בכתה")),
    (("בא", "באה"), ("הלך", "הלכה")),
    (("ניצח", "ניצחה"), ("הפסיד", "הפסידה")),
    (("שתק", "שתקה"), ("דיבר", "דיברה")),
    (("נכנס", "נכנסה"), ("יצא", "יצאה")),
    (("נשאר", "נשארה"), ("עזב", "עזבה")),
]
# What someone did -> the state they are in (an adjective): "היא רצה במשך שעה ולכן עכשיו היא עייפה".
CAUSED_STATES = [
    (("אכל", "אכלה"), "הרבה מאוד בצהריים", ("שבע", "שבעה")),
    (("לא אכל", "לא אכלה"), "כלום כל היום", ("רעב", "רעבה")),
    (("רץ", "רצה"), "במשך שעה", ("עייף", "עייפה")),
    (("קיבל", "קיבלה"), "מתנה יפה", ("שמח", "שמחה")),
    (("הפסיד", "הפסידה"), "במשחק החשוב", ("עצוב", "עצובה")),
    (("עמד", "עמדה"), "הרבה זמן בגשם", ("רטוב", "רטובה")),
    (("שמע", "שמעה"), "רעש חזק בלילה", ("מפוחד", "מפוחדת")),
    (("חיכה", "חיכתה"), "שעתיים בתור", ("כועס", "כועסת")),
]
# A state (an adjective) -> what someone in it always does (a participle): "כאשר היא רעבה היא תמיד אוכלת".
STATE_ACTIONS = [
    (("רעב", "רעבה"), ("אוכל", "אוכלת")),
    (("צמא", "צמאה"), ("שותה", "שותה")),
    (("עייף", "עייפה"), ("ישן", "ישנה")),
    (("שמח", "שמחה"), ("שר", "שרה")),
    (("עצוב", "עצובה"), ("בוכה", "בוכה")),
    (("משועמם", "משועממת"), ("קורא", "קוראת")),
    (("כועס", "כועסת"), ("צועק", "צועקת")),
]
# The verbs the other templates conjugate for their person (`Person.verb`).
PERSON_VERBS = [
    ("קנה", "קנתה"),
    ("אמר", "אמרה"),
    ("חושב", "חושבת"),
    ("עובד", "עובדת"),
    ("גר", "גרה"),
    ("אכל", "אכלה"),
    ("ראה", "ראתה"),
    ("נסע", "נסעה"),
    ("סיפר", "סיפרה"),
]


@dataclass(frozen=True)
class Person:
    name: str
    female: bool
    city: str
    profession: str

    def verb(self, masculine: str, feminine: str) -> str:
        return feminine if self.female else masculine


def _gender_pairs() -> list[tuple[str, str]]:
    pairs = [PRONOUN, *PERSON_VERBS, *PROFESSIONS]
    pairs += [form for pair in OPPOSITE_VERBS for form in pair]
    pairs += [form for cause, _, state in CAUSED_STATES for form in (cause, state)]
    pairs += [form for pair in STATE_ACTIONS for form in pair]
    words = [(masculine, feminine) for masculine, feminine in pairs if " " not in masculine]
    words += [(m.split()[-1], f.split()[-1]) for m, f in pairs if " " in m]  # "לא אכל": the verb
    return sorted({pair for pair in words if pair[0] != pair[1]})


# Every (masculine, feminine) pair of distinct single-word forms the generator writes.
GENDER_PAIRS: list[tuple[str, str]] = _gender_pairs()
NAME_PARTNERS: list[tuple[str, str]] = list(zip(MALE_NAMES, FEMALE_NAMES, strict=True))


def make_people(seed: int) -> list[Person]:
    """Every first name with every surname, each with a home town and a profession drawn once from `seed`."""
    rng = random.Random(f"people-{seed}")
    people = []
    for female, names in ((False, MALE_NAMES), (True, FEMALE_NAMES)):
        for first in names:
            for surname in SURNAMES:
                profession = rng.choice(list(PROFESSIONS))
                people.append(Person(f"{first} {surname}", female, rng.choice(CITIES), profession[female]))
    return people


def _weighted(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _filled(
    template: str, verb: tuple[str, str] = ("", ""), draw: Callable[[random.Random], str] | None = None
) -> Callable[[random.Random, Person], str]:
    """A template whose person fills `{name}`, `{city}`, `{profession}` and `{verb}` (their form of `verb`), and whose
    `{word}` is `draw(rng)`: the templates that draw nothing or one word."""

    def fill(rng: random.Random, p: Person) -> str:
        word = draw(rng) if draw else ""
        return template.format(name=p.name, city=p.city, profession=p.profession, verb=p.verb(*verb), word=word)

    return fill


# fact: the last word is a fact about the person
FACT_TEMPLATES = [
    _filled("{name} {verb} כבר הרבה שנים בעיר {city}", ("גר", "גרה")),
    _filled("כל השכנים יודעים שהמקצוע של {name} הוא {profession}"),
]
# choice: one of a few words with fixed probabilities
CHOICE_TEMPLATES = [
    _filled("בבוקר {name} {verb} לחם טרי עם {word}", ("אכל", "אכלה"), lambda rng: _weighted(rng, SPREADS)),
    _filled("{name} {verb} שבחורף יש בעיר {city} הרבה {word}", ("אמר", "אמרה"), lambda rng: _weighted(rng, WINTER)),
    _filled("אחרי העבודה {name} {verb} כוס {word}", ("שותה", "שותה"), lambda rng: _weighted(rng, DRINKS)),
]


class HebrewSentenceGenerator:
    """`generate(n)`: `n` sentences, the same for the same seed; a share `agreement_share` of them of the `agree`
    kind (with 0, the sentences of the four other kinds only, as before that kind existed)."""

    def __init__(self, seed: int = 0, agreement_share: float = 0.0) -> None:
        if not 0 <= agreement_share < 1:
            raise ValueError(f"agreement_share must be in [0, 1), got {agreement_share}.")
        self.seed = seed
        self.agreement_share = agreement_share
        self.people = make_people(seed)
        self.templates: dict[str, list[Callable[[random.Random, Person], str]]] = {
            "rule": [self._colour, self._next_day, self._opposite, self._workplace, self._sound],
            "fact": FACT_TEMPLATES,
            "choice": CHOICE_TEMPLATES,
            "free": [
                _filled("{name} {verb} אתמול בפארק {word}", ("ראה", "ראתה"), lambda rng: rng.choice(NOUNS)),
                self._travel,
            ],
            "agree": [self._opposite_verb, self._caused_state, self._state_action, self._profession_of_workplace],
        }

    def generate(self, n: int) -> list[str]:
        rng = random.Random(f"sentences-{self.seed}")
        kinds, weights = list(KIND_WEIGHTS), list(KIND_WEIGHTS.values())
        if self.agreement_share:
            kinds.append("agree")
            weights = [weight * (1 - self.agreement_share) for weight in weights] + [self.agreement_share]
        sentences = []
        for _ in range(n):
            person = rng.choice(self.people)
            kind = rng.choices(kinds, weights=weights)[0]
            body = rng.choice(self.templates[kind])(rng, person)
            # The `agree` sentences name nobody, so the pronoun is their only mark of the person's gender.
            named = kind != "agree"
            openings = [self._opening(rng, named) for _ in range(rng.choice((0, 0, 1, 1, 2, 3)))]
            sentences.append(" ".join([*openings, body]))
        return sentences

    def _opening(self, rng: random.Random, named: bool = True) -> str:
        other = rng.choice(self.people)
        opening = rng.choice(OPENINGS if named else [o for o in OPENINGS if "{other}" not in o])
        return opening.format(day=rng.choice(DAYS), other=other.name, told=other.verb("סיפר", "סיפרה"))

    # rule: the last word follows from an earlier word
    def _colour(self, rng: random.Random, p: Person) -> str:
        fruit = rng.choice(list(FRUIT_COLOURS))
        return f"צבע {fruit} ש{p.name} {p.verb('קנה', 'קנתה')} בשוק היה {FRUIT_COLOURS[fruit]}"

    def _next_day(self, rng: random.Random, p: Person) -> str:
        day = rng.randrange(len(DAYS))
        return f"{p.name} {p.verb('אמר', 'אמרה')} שאם היום יום {DAYS[day]} אז מחר יהיה יום {DAYS[(day + 1) % 7]}"

    def _opposite(self, rng: random.Random, p: Person) -> str:
        pair = rng.choice(OPPOSITES)
        word, opposite = pair if rng.random() < 0.5 else pair[::-1]
        return f"{p.name} {p.verb('חושב', 'חושבת')} שהחדר החדש לא {word} אלא {opposite}"

    def _workplace(self, rng: random.Random, p: Person) -> str:
        professions, workplace = rng.choice(list(PROFESSIONS.items()))
        pronoun = p.verb("הוא", "היא")
        return (
            f"{p.name} {pronoun} {professions[p.female]} ולכן {pronoun} {p.verb('עובד', 'עובדת')} כל יום {workplace}"
        )

    def _sound(self, rng: random.Random, p: Person) -> str:
        animal = rng.choice(list(ANIMAL_SOUNDS))
        return f"{animal} של {p.name} תמיד {ANIMAL_SOUNDS[animal]}"

    # free: the last word is drawn uniformly
    def _travel(self, rng: random.Random, p: Person) -> str:
        destination = rng.choice([city for city in CITIES if city != p.city])
        return f"{p.name} {p.verb('נסע', 'נסעה')} מהעיר {p.city} אל העיר {destination}"

    # agree: a pronoun, and a last word that agrees with it; each opens with a time and a town (no gender in them)
    @staticmethod
    def _when_and_where(rng: random.Random) -> str:
        return f"{rng.choice(AGREEMENT_TIMES)} בעיר {rng.choice(CITIES)}"

    def _opposite_verb(self, rng: random.Random, p: Person) -> str:
        pair = rng.choice(OPPOSITE_VERBS)
        verb, opposite = pair if rng.random() < 0.5 else pair[::-1]
        return f"{self._when_and_where(rng)} {p.verb(*PRONOUN)} לא {p.verb(*verb)} אלא {p.verb(*opposite)}"

    def _caused_state(self, rng: random.Random, p: Person) -> str:
        cause, circumstance, state = rng.choice(CAUSED_STATES)
        pronoun = p.verb(*PRONOUN)
        when = self._when_and_where(rng)
        return f"{when} {pronoun} {p.verb(*cause)} {circumstance} ולכן עכשיו {pronoun} {p.verb(*state)}"

    def _state_action(self, rng: random.Random, p: Person) -> str:
        state, action = rng.choice(STATE_ACTIONS)
        pronoun = p.verb(*PRONOUN)
        return f"{self._when_and_where(rng)} כאשר {pronoun} {p.verb(*state)} {pronoun} תמיד {p.verb(*action)}"

    def _profession_of_workplace(self, rng: random.Random, p: Person) -> str:
        professions, workplace = rng.choice(list(PROFESSIONS.items()))
        pronoun, works = p.verb(*PRONOUN), p.verb("עובד", "עובדת")
        when = self._when_and_where(rng)
        return f"{when} {pronoun} {works} כל יום {workplace} כי {pronoun} {professions[p.female]}"
