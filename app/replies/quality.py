"""What a department's reply must pass before it is accepted: pure checks, no database.

The provincial notice asks that replies to citizens be lawful, truthful, direct, specific and easy
to understand. Each check below turns one of those words into something a machine can refuse:
an empty or stock answer is not specific, a forgotten template placeholder is not truthful, a
reply the channel would cut is not easy to understand, and a citizen's phone or ID number on a
public comment is not lawful (Personal Information Protection Law, art. 10). The API reports every
finding at once, so the department fixes the reply in one pass.
"""

import re
import unicodedata
from collections.abc import Collection, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """One reason a reply is refused; the API turns each into one entry of a 422's `errors`."""

    check: str  # empty, stock_phrase, placeholder, too_long, sensitive_word, personal_data
    detail: str
    excerpt: str | None = None  # personal data is masked here, never the full number


# Reply templates mark what the writer must fill in as 【请填写…】; one left in means the citizen
# would read the template instead of an answer.
PLACEHOLDER: re.Pattern[str] = re.compile(r"【\s*请填写[^【】]*】")

# Phrases that say nothing about the citizen's matter: a reply made only of these is the
# "已收到 / 请咨询相关部门" non-answer the notice names. Kept short on purpose: each entry must
# be something no specific answer consists of alone.
STOCK_PHRASES: tuple[str, ...] = (
    "已收到",
    "收到",
    "您的问题已转有关部门",
    "您的问题已转相关部门",
    "您的问题已转有关部门处理",
    "您的问题已转相关部门处理",
    "已转有关部门处理",
    "已转相关部门处理",
    "请咨询相关部门",
    "请咨询有关部门",
    "感谢您的关注",
    "请耐心等待",
)

# Greetings and thanks wrapped around a stock phrase do not make it an answer.
_POLITE_FILLERS: tuple[str, ...] = (
    "尊敬的网友",
    "网友",
    "您好",
    "你好",
    "谢谢您的留言",
    "感谢您的留言",
    "谢谢",
    "感谢",
)

# Longest first, so 已收到 is tried before 收到 and 谢谢您的留言 before 谢谢.
_STOCK_WORDS = sorted(STOCK_PHRASES + _POLITE_FILLERS, key=len, reverse=True)
_STOCK_ONLY = re.compile("(?:{})*".format("|".join(map(re.escape, _STOCK_WORDS))))

# Chinese input methods in full-width mode type １３８ and ＋８６; they are still the same number.
_HALF_WIDTH = str.maketrans("０１２３４５６７８９Ｘｘ＋－\u3000", "0123456789Xx+- ")

# Mainland mobile: 1[3-9] and 9 more digits, optionally +86/86 in front and grouped 3-4-4 by a
# single space or hyphen. No digit may touch it on either side, so parts of order numbers, bank
# cards and ID numbers are not read as phones; service numbers (12345, 12368) and landlines
# (0551-12345678) cannot match.
_MOBILE = re.compile(
    r"(?<![0-9])(?:\+?86[ -]?)?(1[3-9][0-9])[ -]?([0-9]{4})[ -]?([0-9]{4})(?![0-9])"
)

# Resident ID (GB 11643-1999): 17 digits and a check character, not inside a longer digit run.
_ID_CARD = re.compile(r"(?<![0-9])([0-9]{17}[0-9Xx])(?![0-9])")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def check(
    text: str,
    *,
    limit: int,
    sensitive_words: Collection[str],
    public: bool,
    allowed_contacts: Collection[str] = (),
) -> list[Finding]:
    """Every reason to refuse `text`, in a fixed order; an empty list means it may be sent.

    `limit` is the most characters the channel takes in one message; `public` is True when the
    reply is a public comment, the only place personal data is checked (a private message to the
    citizen may carry their own number); `allowed_contacts` are phone numbers that may appear,
    such as the department's published contacts, compared by digits only.
    """
    if not text.strip():
        return [Finding("empty", "The reply is empty: write the answer to the citizen.")]
    findings = [
        Finding(
            "placeholder",
            f"The reply holds an unfilled placeholder {match.group()}: fill it in.",
            match.group(),
        )
        for match in PLACEHOLDER.finditer(text)
    ]
    if _is_stock_reply(text):
        findings.append(
            Finding(
                "stock_phrase",
                "The reply is only a stock phrase: answer the citizen's question specifically "
                "(what was done, what happens next, or who handles it and how to reach them).",
                text.strip(),
            )
        )
    if len(text) > limit:
        findings.append(
            Finding(
                "too_long",
                f"The reply is {len(text)} characters; this channel takes at most {limit} "
                "in one message. It is never split: shorten it.",
            )
        )
    findings.extend(_sensitive_words(text, sensitive_words))
    if public:
        findings.extend(_personal_data(text, allowed_contacts))
    return findings


def _is_stock_reply(text: str) -> bool:
    """Whether `text`, without punctuation, spaces and greetings, is only stock phrases."""
    return _STOCK_ONLY.fullmatch(_letters_and_digits(text)) is not None


def mobile_numbers(text: str) -> list[str]:
    """Mainland mobile numbers in `text`, as 11 digits, each once, in order of appearance."""
    found = ("".join(match.groups()) for match in _MOBILE.finditer(text.translate(_HALF_WIDTH)))
    return list(dict.fromkeys(found))


def id_card_numbers(text: str) -> list[str]:
    """Resident ID numbers in `text` whose check digit is right, X upper-cased, each once.

    A wrong check digit means the run is some other number (an order or a case number), so it
    is not reported.
    """
    candidates = (
        match.group(1).upper() for match in _ID_CARD.finditer(text.translate(_HALF_WIDTH))
    )
    return list(dict.fromkeys(number for number in candidates if _id_check_ok(number)))


def _letters_and_digits(text: str) -> str:
    """`text` without whitespace, punctuation and symbols, Chinese or ASCII alike."""
    return "".join(char for char in text if unicodedata.category(char)[0] in "LN")


def _sensitive_words(text: str, words: Collection[str]) -> Iterator[Finding]:
    """One finding per configured word present, ignoring case, in order of first appearance."""
    folded = text.casefold()
    present: dict[str, tuple[int, str]] = {}
    for word in words:
        key = word.strip().casefold()
        position = folded.find(key) if key else -1
        if position >= 0 and key not in present:
            present[key] = (position, word.strip())
    # Ordered by place in the text, not by the collection, which may be an unordered set.
    for _, word in sorted(present.values()):
        yield Finding(
            "sensitive_word",
            f"The reply contains the word “{word}”, which may not be used: rephrase it.",
            word,
        )


def _personal_data(text: str, allowed_contacts: Collection[str]) -> Iterator[Finding]:
    """Citizens' mobile and ID numbers, masked; numbers the department may publish are skipped."""
    allowed = {_contact_digits(contact) for contact in allowed_contacts}
    for number in mobile_numbers(text):
        if number in allowed:
            continue
        masked = f"{number[:3]}****{number[-4:]}"
        yield Finding(
            "personal_data",
            f"The reply shows a mobile number ({masked}) on a public comment: remove it, "
            "or send it to the citizen by private message.",
            masked,
        )
    for number in id_card_numbers(text):
        masked = f"{number[:4]}{'*' * 10}{number[-4:]}"
        yield Finding(
            "personal_data",
            f"The reply shows a resident ID number ({masked}) on a public comment: remove it.",
            masked,
        )


def _contact_digits(contact: str) -> str:
    """Digits of an allowed contact, with a +86 country code dropped so it compares to 11 digits."""
    digits = "".join(char for char in contact.translate(_HALF_WIDTH) if char in "0123456789")
    if len(digits) == 13 and digits.startswith("861"):
        return digits[2:]
    return digits


def _id_check_ok(number: str) -> bool:
    """GB 11643-1999: the weighted sum of the first 17 digits, mod 11, picks the check character."""
    total = sum(int(digit) * weight for digit, weight in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17]
