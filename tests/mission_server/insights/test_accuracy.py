from mission_server.insights.accuracy import Tally, same_value, score_fields


def test_values_compare_by_type() -> None:
    assert same_value(62, 62.0)
    assert not same_value(62, 63)
    assert not same_value(True, 1)
    assert same_value("Thursday 9am.", " thursday  9AM")
    assert same_value(["Dessert", "delivery"], ["delivery", "dessert"])
    assert not same_value(["dessert"], ["dessert", "delivery"])
    # Free text: a part of what was said, or all of it, is right; something else is not.
    assert same_value("We can do Friday at 6pm.", "Friday at 6pm", "string")
    assert same_value("Friday at 6pm", "We can do Friday at 6pm", "string")
    assert not same_value("Friday at 6pm", "Saturday at noon", "string")
    assert not same_value("Friday at 6pm", "6", "string")
    assert not same_value("fully booked", "booked", "enum")


def test_verdicts_and_rates() -> None:
    fields = [("fee", "number"), ("open", "boolean"), ("slot", "string"), ("extra", "string")]
    verdicts = score_fields(
        fields, {"fee": 85, "open": False, "slot": "noon"}, {"fee": 85, "open": True, "extra": "x"}
    )
    assert [v.verdict for v in verdicts] == ["right", "wrong", "missed", "wrong"]
    tally = Tally()
    tally.add(verdicts)
    assert (tally.right, tally.wrong, tally.missed, tally.absent) == (1, 2, 1, 0)
    # Three values were stated; one of them read right.
    assert tally.stated == 3
    assert tally.rates()["found"] == round(1 / 3, 4)
    assert tally.rates()["wrong_rate"] == 0.5
