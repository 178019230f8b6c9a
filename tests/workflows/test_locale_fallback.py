"""A customer's language we don't write falls back to the best match, and every message of the
case is written in it (issue 11, "Reaching the customer"): zh-HK and zh-MO read zh-TW, zh-SG
reads zh-CN, anything else reads en. tests/api/test_locale_fallback.py opens one through the
API; tests/domain/test_locales.py maps every kind of tag."""

from __future__ import annotations

from email.header import decode_header, make_header

import pytest

from store import service
from store.db import session_scope
from tests.conftest import Stack
from tests.support.factory import case_input
from tests.workflows.helpers import mail_names, mail_text, mails_arrive, reach, stop

# Each language's own words for "your return is approved" and "refund", as its templates write
# them: zh-TW and zh-CN differ in script and wording (核准/通过审核, 退款 in both, 退貨/退货).
FALLBACKS = [
    pytest.param("zh-HK", "zh-TW", "已核准", "退貨", id="zh-HK"),
    pytest.param("zh-MO", "zh-TW", "已核准", "退貨", id="zh-MO"),
    pytest.param("zh-SG", "zh-CN", "已通过审核", "退货", id="zh-SG"),
    pytest.param("fr-FR", "en", "is approved", "return", id="fr-FR"),
]


@pytest.mark.parametrize(("tag", "locale", "approved", "word"), FALLBACKS)
async def test_the_case_speaks_the_best_match(
    stack: Stack, tag: str, locale: str, approved: str, word: str
) -> None:
    case = case_input(now=await stack.now(), customer={"locale": tag})
    # The case keeps the storefront's tag and speaks the language it falls back to.
    assert (case.request.customer.locale, case.request.customer.requested_locale) == (locale, tag)
    handle = await stack.start(case)
    view = await reach(handle, "awaiting_shipment")
    assert (view.customer.locale, view.customer.requested_locale) == (locale, tag)
    await mails_arrive(stack.mail, case, "case_approved")
    assert mail_names(stack.mail, case) == ["case_received", "case_approved"]

    assert case.request.customer.email
    [mail] = [
        m
        for m in stack.mail.to(case.request.customer.email)
        if str(m["Message-ID"]).startswith(f"<{case.case_id}.case_approved.")
    ]
    subject = str(make_header(decode_header(str(mail["Subject"]))))
    assert approved in subject and case.case_id in subject, subject
    text = mail_text(stack.mail, case, "case_approved")
    assert word in text and case.status_url in text
    # Not the other Chinese: a zh-TW mail has no simplified wording, and the reverse.
    other = {"zh-TW": "已通过审核", "zh-CN": "已核准", "en": "已"}[locale]
    assert other not in subject
    with session_scope(stack.engine) as session:
        log = service.deliveries(session, case_id=case.case_id)
    assert {row.locale for row in log} == {locale}
    await stop(stack.client, handle)
