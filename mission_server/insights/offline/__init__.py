"""The offline extractor: structured insights from the transcript text alone, no model.

It exists so the simulator, tests and air-gapped runs get real, checkable results. It reads
what people *said* and never guesses: a field it cannot find is reported in ``missing``, and a
field the text answers two different ways is missing too, with the reason. A required field
missing makes the result ``failed``; an optional one is left out. Every result is validated
against the insight's JSON Schema before it is returned.

Roles: ``assistant`` is our voice agent; ``user`` is the other party (on an outbound mission
call, the business we called). Prices are read from the other party's turns.

How each parameter type is read (the heuristics are deliberately simple and stated here):

* **Money** (a number/integer field whose name says price, cost, quote, fee, amount, total,
  budget, deposit, … or whose description mentions a price or dollars): amounts written
  ``$62``, ``$1,250``, ``$1.2k``, ``62 dollars``, ``62 bucks``, ``sixty-two dollars`` (and
  ``… and fifty cents``). An amount is *per unit* when followed by ``per person``, ``a head``,
  ``/guest``, ``each`` …, or preceded in its clause by ``per person``; it is a *total* when its
  clause says total, altogether, all-in, overall. Then:

  - whose amounts: the other party's (``user``), unless the field says assistant/agent/our
    offer. A user turn that is a plain "yes / we can do that" to an assistant turn naming an
    amount counts as the user agreeing to the *last* amount the assistant named. A user
    amount that merely repeats the assistant's figure from the turn before, in a turn that is
    not a yes ("we can't match $58, but $60 works"), is a reference, not an offer, and is
    skipped.
  - which basis: a field saying ``per_person``/``per guest``/``each`` takes per-unit amounts
    (person, head, guest, plate, attendee, cover are one unit); one saying ``total`` takes
    totals. Once someone has quoted per unit, a later amount with no unit and no "total"
    ("we could do $60") is read on the same basis. A field that says neither takes per-unit
    amounts if there are any (businesses quote per unit and buyers compare per unit), else
    any amount.
  - add-ons: an amount charged *for* something else — "$150 extra for delivery", "a $200
    deposit", "the setup fee is $75" (extra, fee, deposit, delivery, setup, tax, tip …) — is
    not the price. A field about that add-on (``delivery_fee``, ``deposit``) takes only such
    amounts; every other money field ignores them.
  - which mention: ``initial``/``first``/``original``/``opening``/``baseline`` in the name
    (else the description) takes the first; ``lowest``/``min``/``cheapest`` the smallest;
    ``highest``/``max`` the largest; otherwise — ``final``, ``agreed``, ``best`` or nothing —
    the last, because in a negotiation a later offer replaces an earlier one.

* **Other numbers** (counts, minutes, …): a number (digits or words) directly followed, within
  two words, by a word from the field's name or description (``40 guests`` for
  ``guest_count``), or the only number in the other party's reply to an assistant question
  about the field. Several different values with no first/last/min/max hint is ambiguous.
  ``integer`` fields need a whole number.
* **boolean**: the assistant question that best matches the field's name and description
  (shared words), and the other party's reply right after it: yes/yeah/sure/we do/we can …
  is true, no/not/unfortunately/we don't/we can't … is false ("no problem" is a yes).
  Equally good questions answered both ways is ambiguous.
* **enum**: the enum values named in the text (underscores and hyphens read as spaces). The
  other party's turns decide; if they name none, the whole conversation. Two different values
  named is ambiguous. A ``string`` field whose description lists quoted options
  (``"billing", "technical"``) is treated the same way.
* **string**: a field about a summary gets the summary (below); otherwise the other party's
  reply to the best-matching assistant question, with fillers ("well", "it's") trimmed. A
  money string field gets the amount as text (``$62 per person``).
* **array / array(string)**: options the description lists (quoted, or after "e.g." / "such
  as") that are named in the text, in order of first mention; otherwise the items of an
  enumeration ("chicken, beef and a vegetarian lasagna") in the reply to the best-matching
  question. **array(number)**: every amount mentioned (money fields) or every matching number.
  **array(boolean)**: the description's ordered list ("in order: email, SMS, push") answered
  one by one as booleans; all must be found.
* **object**: the sub-fields the description lists after "including"/"with"/":" ("name,
  account number and contact preference"), each read as a string (or money) field.
* **Free-text insights** and summary fields: a deterministic summary — who spoke how often, the
  amounts the other party quoted in order, and the other party's last words.
"""

from __future__ import annotations

from mission_server.insights.offline.extractor import OfflineExtractionResult, OfflineExtractor
from mission_server.insights.offline.language import polarity
from mission_server.insights.offline.numbers import Money, find_money, words_to_digits

__all__ = [
    "Money",
    "OfflineExtractionResult",
    "OfflineExtractor",
    "find_money",
    "polarity",
    "words_to_digits",
]
