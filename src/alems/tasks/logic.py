"""The seeded ``logical_reasoning`` family: deductions with one definite answer.

Templates:
  * ordering chains (taller/older/faster) from shuffled adjacent comparisons; the
    question asks for an extreme (a name) or a non-adjacent comparison (yes/no);
  * categorical syllogisms over nonsense words, valid forms (answer yes) and classic
    invalid forms (answer no: the conclusion does not follow);
  * conditionals: modus ponens (yes), modus tollens (no), affirming the consequent and
    denying the antecedent (no: it does not follow);
  * elimination: a ball in one of several boxes, all but one ruled out (a colour).

Answers are closed choices (yes/no, a name, a colour), so the checker requires exactly
one candidate to be named.

Depth (``Goal.steps``): the number of premises the answer needs. An extreme of an
ordering needs the whole chain (``k - 1`` comparisons), a comparison of positions ``a <
b`` needs ``b - a``; a syllogism needs its premises (1 or 2); a conditional its rule and
its fact (2); an elimination its ``k - 1`` clues. ``Goal.template`` names the template
and form (``ordering_top``, ``syllogism_barbara``, ``conditional_modus_tollens``, ...).
"""

from __future__ import annotations

import numpy as np

from alems.tasks.base import Goal

PEOPLE = ("Alice", "Bruno", "Carmen", "David", "Emeka", "Farah", "Greta", "Hiro", "Ines", "Jonas")
RELATIONS = (  # (comparative, superlative-top, superlative-bottom)
    ("taller than", "tallest", "shortest"),
    ("older than", "oldest", "youngest"),
    ("faster than", "fastest", "slowest"),
    ("heavier than", "heaviest", "lightest"),
)
NONSENSE = ("blickets", "wugs", "daxes", "feps", "toves", "zorbs", "glims", "snarks", "plonks", "vorns")
COLOURS = ("red", "green", "blue", "yellow", "white", "black")
CONDITIONS = (
    (
        "it rains",
        "the street gets wet",
        "it rained",
        "the street got wet",
        "it did not rain",
        "the street did not get wet",
    ),
    (
        "the alarm rings",
        "Sam wakes up",
        "the alarm rang",
        "Sam woke up",
        "the alarm did not ring",
        "Sam did not wake up",
    ),
    (
        "the switch is on",
        "the lamp glows",
        "the switch was on",
        "the lamp glowed",
        "the switch was not on",
        "the lamp did not glow",
    ),
    (
        "Mia studies",
        "Mia passes the test",
        "Mia studied",
        "Mia passed the test",
        "Mia did not study",
        "Mia did not pass the test",
    ),
)
YES_NO = ("yes", "no")
_SALT = 21


Made = tuple[str, str, tuple[str, ...], int, str]  # text, answer, choices, depth, template


def _ordering(rng: np.random.Generator) -> Made:
    k = int(rng.integers(3, 6))
    names = [PEOPLE[j] for j in rng.permutation(len(PEOPLE))[:k]]  # names[0] is the top
    comp, top, bottom = RELATIONS[int(rng.integers(len(RELATIONS)))]
    facts = [f"{names[j]} is {comp} {names[j + 1]}." for j in range(k - 1)]
    facts = [facts[j] for j in rng.permutation(len(facts))]
    kind = int(rng.integers(3))
    if kind == 0:
        q, ans, choices = f"Who is the {top}?", names[0], tuple(names)
        depth, form = k - 1, "top"
    elif kind == 1:
        q, ans, choices = f"Who is the {bottom}?", names[-1], tuple(names)
        depth, form = k - 1, "bottom"
    else:
        a, b = sorted(int(x) for x in rng.choice(k, size=2, replace=False))
        if b - a < 2 and k >= 3:  # make the comparison need a chain when possible
            a, b = 0, k - 1
        if rng.integers(2):
            q, ans = f"Is {names[a]} {comp} {names[b]}?", "yes"
        else:
            q, ans = f"Is {names[b]} {comp} {names[a]}?", "no"
        choices = YES_NO
        depth, form = b - a, "compare"
    text = " ".join(facts) + f" {q} Answer yes or no." if choices == YES_NO else " ".join(facts) + f" {q}"
    return text, ans, choices, depth, f"ordering_{form}"


_SYLLOGISM_FORMS = ("barbara", "celarent", "undistributed_middle", "illicit_converse", "darii")


def _syllogism(rng: np.random.Generator) -> Made:
    a, b, c = (NONSENSE[j] for j in rng.permutation(len(NONSENSE))[:3])
    form = int(rng.integers(5))
    if form == 0:  # Barbara: valid
        premises, concl, ans = [f"All {a} are {b}.", f"All {b} are {c}."], f"all {a} are {c}", "yes"
    elif form == 1:  # Celarent: valid
        premises, concl, ans = [f"No {b} are {c}.", f"All {a} are {b}."], f"no {a} are {c}", "yes"
    elif form == 2:  # undistributed middle: invalid
        premises, concl, ans = [f"All {a} are {b}.", f"Some {b} are {c}."], f"some {a} are {c}", "no"
    elif form == 3:  # illicit converse: invalid
        premises, concl, ans = [f"All {a} are {b}."], f"all {b} are {a}", "no"
    else:  # Darii: valid
        premises, concl, ans = [f"All {b} are {c}.", f"Some {a} are {b}."], f"some {a} are {c}", "yes"
    premises = [premises[j] for j in rng.permutation(len(premises))]
    text = (
        " ".join(premises)
        + f" Based only on these statements, must it be true that {concl}? Answer yes or no."
    )
    return text, ans, YES_NO, len(premises), f"syllogism_{_SYLLOGISM_FORMS[form]}"


_CONDITIONAL_FORMS = ("modus_ponens", "modus_tollens", "affirming_consequent", "denying_antecedent")


def _conditional(rng: np.random.Generator) -> Made:
    p, q, p_past, q_past, not_p, not_q = CONDITIONS[int(rng.integers(len(CONDITIONS)))]
    form = int(rng.integers(4))
    rule = f"Whenever {p}, {q}."
    if form == 0:  # modus ponens
        text, ans = f"{rule} Yesterday {p_past}. Based only on this, is it certain that {q_past}?", "yes"
    elif form == 1:  # modus tollens: P is certainly false
        text, ans = f"{rule} Yesterday {not_q}. Based only on this, is it possible that {p_past}?", "no"
    elif form == 2:  # affirming the consequent
        text, ans = f"{rule} Yesterday {q_past}. Based only on this, is it certain that {p_past}?", "no"
    else:  # denying the antecedent
        text, ans = f"{rule} Yesterday {not_p}. Based only on this, is it certain that {not_q}?", "no"
    return text + " Answer yes or no.", ans, YES_NO, 2, f"conditional_{_CONDITIONAL_FORMS[form]}"


def _elimination(rng: np.random.Generator) -> Made:
    k = int(rng.integers(3, 6))
    colours = [COLOURS[j] for j in rng.permutation(len(COLOURS))[:k]]
    ans = colours[int(rng.integers(k))]
    others = [c for c in colours if c != ans]
    others = [others[j] for j in rng.permutation(len(others))]
    clues = " ".join(f"The ball is not in the {c} box." for c in others)
    text = (
        f"A ball is hidden in exactly one of {k} boxes: " + ", ".join(colours) + f". {clues} "
        "Which box holds the ball? Name its colour."
    )
    return text, ans, tuple(colours), k - 1, "elimination"


TEMPLATES = (_ordering, _syllogism, _conditional, _elimination)


def generate_logical_reasoning(seed: int, n: int) -> list[Goal]:
    goals = []
    for i in range(n):
        rng = np.random.default_rng([seed, i, _SALT])
        text, ans, choices, depth, template = TEMPLATES[int(rng.integers(len(TEMPLATES)))](rng)
        goals.append(
            Goal(
                family="logical_reasoning",
                goal_id=f"logical_reasoning-s{seed}-{i:04d}",
                prompt=text,
                expected=ans,
                answer_kind="string",
                choices=choices,
                tools=(),
                steps=depth,
                template=template,
            )
        )
    return goals
