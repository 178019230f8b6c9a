"""Steps the case types compose: review, offers, refunds, taking an item in, sending one out,
and the follow-up. Each is a function of the `Case` (and its parts) it works on."""
