"""What a question asks, for the local answerer: the kind of thing that answers it (a time, a duration, a
number, a person's name, a name or code), the thing it asks for (its focus: "how many *engineers*"), and the
names in it ("Atlas", "Chief Financial Officer"), with the expressions that tell whether a sentence says such a
thing. English only, like the rest of local mode's text analysis (``rtrag.workflows.text``)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rtrag.workflows.text import STOP_WORDS, stem, words

# What kind of thing answers a question, and what a sentence must say to be such an answer:
# - WHEN (when, what date, which year): a time expression (a date, a clock time, a weekday or month, "every
#   night", "the first day of each month");
# - DURATION (how long, how often, how quickly): a number or a frequency with a unit of time;
# - NUMBER (how many, how much, how large, what percentage): a number it does not already name;
# - NAME (who): a person's name; NAME_OR_NUMBER (which, where): a name, a code or a number.
WHEN, DURATION, NUMBER, NAME, NAME_OR_NUMBER = "when", "duration", "number", "name", "name or number"
KINDS = (
    (WHEN, re.compile(r"\b(when|what (time|date|day|month|year)|which (date|day|month|year)|since when|until when)\b",
                      re.I)),
    (DURATION, re.compile(r"\bhow (long|often|quickly|soon|frequently|early|late)\b", re.I)),
    (NUMBER, re.compile(r"\b(how (many|much|old|far|big|large|fast|high|low|small|short|tall|heavy|wide|deep)|what "
                        r"(percentage|percent|share|number|amount))\b", re.I)),
    (NAME, re.compile(r"\b(who|whom|whose)\b", re.I)),
    (NAME_OR_NUMBER, re.compile(r"\b(which|where)\b", re.I)),
)
MONTHS = "january february march april may june july august september october november december"
DAYS = "monday tuesday wednesday thursday friday saturday sunday"
CALENDAR = frozenset(MONTHS.split() + DAYS.split())
UNITS = r"(second|minute|hour|day|night|week|month|quarter|year|business day|working day)s?"
FREQUENCY = r"(daily|weekly|monthly|yearly|annually|quarterly|nightly|hourly|once|twice|every|each)"
NUMBER_WORD = (r"(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|"
                r"sixty|ninety|hundred|thousand|million|billion|dozen|half|first|second|third|fourth|fifth|last|next)")
NUMBER_EXPRESSION = re.compile(rf"\d|\b{NUMBER_WORD}\b", re.I)
TIME_EXPRESSION = re.compile(
    rf"\b(\d{{1,2}}:\d{{2}}|(1[5-9]|20)\d\d|\d{{4}}-\d\d-\d\d|{'|'.join(MONTHS.split())}|{'|'.join(DAYS.split())}|noon|"
    rf"midnight|{FREQUENCY}|(\d+|{NUMBER_WORD}|each|every|end of|start of|beginning of)\s+(\w+\s+)?{UNITS}|"
    rf"(before|after|within|until|by|at|on)\s+(the\s+)?(\d|{NUMBER_WORD}))", re.I)
DURATION_EXPRESSION = re.compile(rf"\b(\d[\d,.]*|{NUMBER_WORD}|a|an|few|several)\s+(\w+\s+)?{UNITS}\b|"
                                 rf"\b{FREQUENCY}\b", re.I)
# The focus of "what is the title", "which date", "what number": a word that names the kind of answer, not a
# thing the sentence must repeat ("Dr. Ana Costa, Head of Reliability" answers "what is her job title").
KIND_NOUNS = {
    **dict.fromkeys("name title role position job owner person lead head".split(), NAME),
    **dict.fromkeys("date day year month time deadline".split(), WHEN),
    **dict.fromkeys("number amount count total size price cost percentage share rate ratio limit target".split(),
                    NUMBER),
    **dict.fromkeys("duration period frequency interval".split(), DURATION),
    **dict.fromkeys("address location place city country town region venue room street version release".split(),
                    NAME_OR_NUMBER),
}
# A person's name ("Kofi", "O'Neil"), and for "which"/"where" any name or code ("ISO/IEC", "SREcon", "Baixa").
PERSON_TOKEN = re.compile(r"^[A-Z][a-z][\w'\u2019-]*$")
NAME_TOKEN = re.compile(r"^[A-Z][\w/&.-]*$")
YEAR = re.compile(r"^(1[5-9]|20)\d\d$")
TOKEN = re.compile(r"[A-Za-z0-9][\w/&.:'\u2019-]*")
# The thing a question asks for: the noun after "what is the", "what's our", "how many", "which", "who is the"
# (the last word of the run of content words there: "how many leave days" -> "days").
FOCUS = re.compile(r"\b(?:how (?:many|much)|which|what(?:'s|\s+(?:is|are|was|were|will be))?|who(?:'s|\s+(?:is|are|"
                    r"was|were))(?=\s+(?:the|our|a|an|its|their|his|her|my)\b))(?:\s+(?:the|our|a|an|its|their|his|"
                    r"her|my))?\s+(.*)", re.I)


def focus_words(part: str) -> list[str]:
    """What the part asks for, when it names it: the run of words after "how many", "which", "what is the"...
    ("what's the maximum number of users" -> ["maximum", "number"]); its last word is the thing asked for."""
    match = FOCUS.search(part)
    if match is None:
        return []
    run: list[str] = []
    for token in TOKEN.findall(match.group(1)):
        word = (words(token) or [""])[0]
        if not word or word in STOP_WORDS:
            break
        if run and token[0].isupper() and not token.endswith(("'s", "\u2019s")):
            break  # "the biggest document Atlas will accept": the name starts the clause after the noun
        run.append(word)
    return run


def name_runs(tokens: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """The runs of capitalized words after the first token, as term sequences (months and weekdays are dates)."""
    runs: list[list[str]] = []
    previous = -2
    for i, token in enumerate(tokens):
        word = (words(token) or [""])[0]
        if i == 0 or not NAME_TOKEN.match(token) or not word or word in STOP_WORDS or word in CALENDAR:
            continue
        if i == previous + 1:
            runs[-1].append(stem(word))
        else:
            runs.append([stem(word)])
        previous = i
    return tuple(tuple(run) for run in runs)


def holds_run(run: tuple[str, ...], sequence: tuple[str, ...]) -> bool:
    """Whether ``run`` occurs in ``sequence`` in order, a word matching when one begins the other ("Postgres",
    "PostgreSQL")."""
    def same(a: str, b: str) -> bool:
        return a == b or (len(a) >= 4 and len(b) >= 4 and (a.startswith(b) or b.startswith(a)))

    n = len(run)
    return any(all(same(run[k], sequence[i + k]) for k in range(n)) for i in range(len(sequence) - n + 1))


def kind_noun(word: str) -> str | None:
    return KIND_NOUNS.get(word) or KIND_NOUNS.get(word.removesuffix("s"))


def answer_kind(part: str) -> str | None:
    for kind, pattern in KINDS:
        if pattern.search(part):
            return kind
    return None
