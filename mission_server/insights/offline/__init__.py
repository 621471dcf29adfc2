"""The offline extractor: structured insights from the transcript text alone, no model.

It exists so the simulator, tests and air-gapped runs get real, checkable results. It reads
what people *said* and never guesses: a field it cannot find is reported in ``missing``, and a
field the text answers two different ways is missing too, with the reason. A required field
missing makes the result ``failed``; an optional one is left out. Every result is validated
against the insight's JSON Schema before it is returned.

Roles: ``assistant`` is our voice agent; ``user`` is the other party (on an outbound mission
call, the business we called). Values are read from the other party's words only; the
assistant's words are context: which question a reply answers, which amount a "yes" agrees
to. A wrong value is worse than a missing one, so anything unsure is missing, with the reason
in ``OfflineExtractionResult.reasons``.

Questions and answers: an assistant turn *asks* through its question sentences (ending in
"?", or "I wanted to ask if…", "could you…"); social ones ("have you got a minute?", "is this
Swift Movers?", "how are you?") ask about nothing. The *reply* to a question is everything the
other party says until the assistant's next question. A question is about a field when its
asking sentences share words with the field's name (counted double) or description, plus half
for the rest of its turn (all of it when the asking sentence points back: "We have a baby
grand to move. Is that something you handle?"); "available" is also asked as open / free / booked,
"confirmed" as "can you make it / be there / come in", a day or time field by "when …?". A reply is
read sentence by sentence (``stance``): acknowledgements ("sure, one moment", "let me look", "how
can I help?", "October 11th, let me check…", a bare "Sure." before more) are skipped; the first
sentence that decides gives the answer; a hedge anywhere ("I'd have to check", "call you back", "it
depends", "probably", "I can't promise", "nobody can give you that over the phone") means none.
When some sentences of a reply name the field, they decide ("We're licensed, yes. Insurance I'd
have to check" does not say ``insured``). No is also read inside a sentence: "fully booked", "is
booked", "nothing open", "sold out", "we're full", "we can't", "I've already got a wedding", "…,
no", a sentence ending "…, sorry" or "…, I'm afraid" that says nothing else — and yes in "…, so
yes".

How each parameter type is read (the heuristics are deliberately simple and stated here):

* **Money** (a number/integer field whose name says price, cost, quote, fee, amount, total,
  budget, deposit, … or whose description mentions a price or dollars): amounts written
  ``$62``, ``$1,250``, ``$1.2k``, ``62 dollars``, ``62 bucks``, ``sixty-two dollars`` (and
  ``… and fifty cents``), a bare figure of 100 or more after an offer verb ("we'd go to
  eleven thousand five hundred", "you're looking at thirty-two hundred", "it comes to 2,300")
  and a bare figure with a price basis ("we charge 95 an hour", "forty-five a head"). An
  amount is *per unit* when followed by ``per person``, ``a head``, ``an hour``, ``a room``,
  ``/guest``, ``each`` …, or preceded in its clause by ``per person``; it is a *total* when
  its clause says total, altogether, all-in, overall, for the whole, out the door, or
  ``flat`` ("a flat $300"); a price per job (``per move``, ``per visit``, ``per project``,
  …) counts as a total too. Two amounts given as a range ("between $400 and $800", "$400 to
  $800") are no price. Then:

  - whose amounts: the other party's, unless the field says assistant/agent/our offer. A
    reply that says yes (``stance``) with no amount, to an assistant question proposing an
    amount ("would you take $18,000?", "could you match that?"), agrees to the last amount
    the assistant named. A yes to a request to do *better* ("can you beat $60?", "any
    flexibility?") names no figure: the price after it is unknown, so a final/lowest price is
    missing. A user amount that repeats the assistant's figure from the turn before is a
    reference, not an offer ("we can't match $58, but $60 works"), unless the reply says yes
    or offers it ("we can match it at $11,200").
  - which basis: a field saying ``per_person``/``per guest``/``each`` (or hourly, nightly,
    daily, weekly, monthly, yearly) takes per-unit amounts (person, head, guest, plate,
    attendee, cover, child, kid, adult are one unit); one saying ``total`` takes totals and per-job
    prices. Once someone has quoted per unit, a later amount with no unit and no "total" ("we could
    do $60") is read on the same basis. A field that says neither takes per-unit amounts if
    there are any, else any amount.
  - fees and add-ons: an amount charged *for* something else — "$150 extra for delivery", "a
    $200 deposit", "the setup fee is $75", "a $60 trip charge", "$399 doc fee", "parking's
    $25", "that's another $60", any amount in a sentence saying separate, additional, on top
    or not included ("grinding is separate, around $200"), in a clause pricing another version
    ("without dessert it would be $58", "if you skip delivery", "otherwise"), and amounts after a
    refusal to price ("Can't tell you till we scan it. The diagnostic is $95") — is not the price;
    "with taxes it comes to $441", "with tax and fees you're at $27,340" and "a flat fee of $300"
    are. A field named for a fee or add-on (``delivery_fee``, ``deposit``, ``callout_fee``,
    ``trip_charge``) takes the amounts charged for what it names, or whose clause (or the question
    they answer) uses its own words ("$85 per visit" answering "what do you charge to come out?"
    for a call-out fee), else whose sentence does ("a camera inspection, that's $250"), or, failing
    all, the one fee the other party named. Every other money field ignores add-ons.
  - which mention: ``initial``/``first``/``original``/``opening``/``baseline`` in the name
    (else the description) takes the first — missing when the assistant recalls an earlier
    quote ("your quote of $12,500"), since the first was made before the call;
    ``lowest``/``min``/``cheapest`` the smallest; ``highest``/``max`` the largest; otherwise
    — ``final``, ``agreed``, ``best`` or nothing — the last, because in a negotiation a later
    offer replaces an earlier one; but if that last reply itself gives different figures
    ("around $450, maybe $500 if it's big"; "standard is $48, premium $75") it is ambiguous.
    A figure of the assistant's that the reply repeats beside one of its own ("$400 is too
    low, I could do $425") is a reference.

* **Other numbers** (counts, minutes, …): a number (digits or words) said by the other party
  directly followed, within two words, by a word from the field's name or description
  (``40 guests`` for ``guest_count``), or the only number in the other party's first reply to
  an assistant question about the field. The assistant's own figure for the same thing ("for
  40 guests") beside a different one from the other party ("it holds 120 guests") is
  ambiguous. Several different values with no first/last/min/max hint is ambiguous.
  ``integer`` fields need a whole number.
* **boolean**: the assistant questions that best match the field, and the ``stance`` of the
  reply to each. Never asked, or no yes/no in the reply, is missing; equally good questions
  answered both ways is ambiguous.
* **enum**: the enum values the other party names (underscores and hyphens read as spaces, a
  plural allowed) in a clause that does not deny them ("we don't do plated", "suites are
  gone", "dessert is extra" name nothing); if none is named word for word, a value all of
  whose words one sentence of theirs says ("we do have availability"). The assistant's words
  never name a value. Two different values named is ambiguous. An enum of two values where
  one is a no ("fully booked", "not available", "declined") is also answered from the
  ``stance`` of the reply to the best-matching question. A ``string`` field whose description
  lists quoted options (``"billing", "technical"``) is treated the same way.
* **string**: a field about a summary gets the summary (below). Otherwise the other party's
  reply to the best-matching question: a field about what they *said* (answer, reply,
  response, notes) gets the reply with fillers ("well", "it's") trimmed; a day/time field
  (date, day, time, when, earliest, schedule, …) the one day or time the reply names
  ("Thursday", "tomorrow morning", "3 pm", "Thursdays at ten"); a name field (name, brand, make,
  model, company; also asked by "who …?") the one capitalised name in it; else the trimmed reply
  when it is short (at most six words). A longer sentence, a question back, or a hedge is missing
  with the reason. A money string field gets the amount as text (``$62 per person``).
* **array / array(string)**: options the description lists (quoted, or after "e.g." / "such
  as") that the other party names and does not deny, in order of first mention — when one of
  their sentences lists several, an option named alone elsewhere counts only in a sentence
  that offers it ("we have…", "…is included"), not in "linens are through our partner";
  items of their list that share words with one option best count as naming it ("windows,
  gutters" for "window washing", "gutter cleaning"); a yes to a question naming exactly one
  option counts as naming it; otherwise the items of an
  enumeration ("chicken, beef and a vegetarian lasagna") in the reply to the best-matching
  question, each item without the price said with it ("a three-course at $55" -> three-course).
  **array(number)**: every amount mentioned by anyone (money fields: "all prices mentioned") or
  every number of the other party's that matches as above. **array(boolean)**: the description's
  ordered list ("in order: email, SMS, push") answered one by one as booleans; all must be found.
* **object**: the sub-fields the description lists after "including"/"with"/":" ("name,
  account number and contact preference"), each read as a string (or money) field.
* **Free-text insights** and summary fields: a deterministic summary — who spoke how often, the
  amounts the other party quoted in order, and the other party's last words.
"""

from __future__ import annotations

from mission_server.insights.offline.extractor import OfflineExtractionResult, OfflineExtractor
from mission_server.insights.offline.language import polarity, stance
from mission_server.insights.offline.numbers import Money, find_money, words_to_digits

__all__ = [
    "Money",
    "OfflineExtractionResult",
    "OfflineExtractor",
    "find_money",
    "polarity",
    "stance",
    "words_to_digits",
]
