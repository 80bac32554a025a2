"""The checks a reply must pass before it is accepted: pure functions, no database."""

from collections.abc import Collection

import pytest

from app.replies.quality import (
    PLACEHOLDER,
    STOCK_PHRASES,
    Finding,
    check,
    id_card_numbers,
    mobile_numbers,
)

LIMIT = 600


def with_check_digit(first17: str) -> str:
    """A resident ID number with its GB 11643-1999 check character, computed independently."""
    weights = [2 ** (17 - i) % 11 for i in range(17)]  # 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, ...
    remainder = sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11
    return first17 + "10X98765432"[remainder]


# The sample number published with GB 11643-1999; its check character is X.
ID_X = "11010519491231002X"
ID_DIGIT = with_check_digit("34010419900307123")


def public(text: str, *, allowed_contacts: Collection[str] = ()) -> list[Finding]:
    return check(
        text, limit=LIMIT, sensitive_words=(), public=True, allowed_contacts=allowed_contacts
    )


def checks(findings: list[Finding]) -> list[str]:
    return [finding.check for finding in findings]


def test_the_helper_agrees_with_the_published_sample() -> None:
    assert with_check_digit(ID_X[:17]) == ID_X
    assert ID_DIGIT[-1].isdigit()


def test_id_number_ending_in_x_is_flagged_on_a_public_comment() -> None:
    text = f"经核实，{ID_X}号身份证持有人的社保关系已转入合肥，请留意短信通知。"

    findings = public(text)

    assert findings == [
        Finding(
            "personal_data",
            "The reply shows a resident ID number (1101**********002X) on a public comment: "
            "remove it.",
            "1101**********002X",
        )
    ]


def test_lower_case_x_is_an_id_number_too() -> None:
    text = f"您提供的身份证号{ID_X.lower()}已登记。"

    assert id_card_numbers(text) == [ID_X]
    assert checks(public(text)) == ["personal_data"]


def test_id_number_ending_in_a_digit_is_flagged() -> None:
    findings = public(f"申请人{ID_DIGIT}的补贴已发放。")

    assert [f.excerpt for f in findings] == [f"3401{'*' * 10}{ID_DIGIT[-4:]}"]


def test_wrong_check_digit_is_not_an_id_number() -> None:
    wrong = ID_X[:17] + "5"
    text = f"您的业务受理编号为{wrong}，可凭此编号查询办理进度。"

    assert id_card_numbers(text) == []
    assert public(text) == []


def test_nineteen_digit_run_holding_an_id_is_not_flagged() -> None:
    text = f"您的缴费流水号为{ID_DIGIT}7，请妥善保存。"

    assert id_card_numbers(text) == []
    assert public(text) == []


def test_referral_to_a_service_hotline_passes_clean() -> None:
    text = "您反映的问题属于法院职责，请拨打12368诉讼服务热线咨询。"

    assert public(text) == []


def test_service_numbers_and_landlines_are_never_flagged() -> None:
    text = (
        "如遇紧急情况请拨打110，政务服务请拨打12345，"
        "也可致电市人社局0551-12345678或0551 62345678咨询。"
    )

    assert mobile_numbers(text) == []
    assert public(text) == []


def test_reply_at_exactly_the_limit_passes() -> None:
    text = "您好，社保补缴请到市民中心办理。" + "具" * (LIMIT - 16)
    assert len(text) == LIMIT

    assert public(text) == []


def test_one_character_past_the_limit_fails_with_length_and_limit() -> None:
    text = "您好，社保补缴请到市民中心办理。" + "具" * (LIMIT - 15)

    findings = public(text)

    assert checks(findings) == ["too_long"]
    assert "601 characters" in findings[0].detail
    assert "at most 600" in findings[0].detail


@pytest.mark.parametrize(
    "number",
    [
        "13812345678",
        "138 1234 5678",
        "138-1234-5678",
        "+8613812345678",
        "+86 138 1234 5678",
        "+86-138-1234-5678",
        "8613812345678",
        "１３８１２３４５６７８",  # typed with a full-width input method
    ],
)
def test_mobile_numbers_are_flagged_on_a_public_comment(number: str) -> None:
    text = f"请联系经办人王女士，电话{number}，工作日均可。"

    findings = public(text)

    assert mobile_numbers(text) == ["13812345678"]
    assert [(f.check, f.excerpt) for f in findings] == [("personal_data", "138****5678")]


@pytest.mark.parametrize("number", ["138 1234 5678", "+86 138-1234-5678", ID_X])
def test_personal_data_is_not_checked_in_a_private_message(number: str) -> None:
    text = f"已为您登记，联系方式{number}，请保持畅通。社保补缴材料已审核通过。"

    assert check(text, limit=LIMIT, sensitive_words=(), public=False) == []


def test_allowed_contacts_compare_by_digits() -> None:
    text = (
        "社保补缴请咨询市社保中心，电话0551-12345678；"
        "夜间请联系值班手机139 0551 0000，或+86 138-1234-5678。"
    )

    findings = public(text, allowed_contacts=("0551 12345678", "13905510000", "+86 13812345678"))

    assert findings == []


def test_only_the_numbers_not_allowed_are_flagged() -> None:
    text = "值班手机13905510000；来信人电话13812345678。"

    findings = public(text, allowed_contacts=("139-0551-0000",))

    assert [f.excerpt for f in findings] == ["138****5678"]


def test_a_mobile_inside_a_longer_digit_run_is_not_flagged() -> None:
    text = "您的订单号为913812345678，退款已原路返回。"

    assert mobile_numbers(text) == []
    assert public(text) == []


def test_each_number_is_reported_once() -> None:
    text = "电话13812345678（即138-1234-5678），身份证11010519491231002X。"

    assert [f.excerpt for f in public(text)] == ["138****5678", "1101**********002X"]


def test_masked_excerpts_never_hold_the_full_number() -> None:
    text = f"王某，身份证{ID_X}，手机+86 138 1234 5678，住址已核实。"

    findings = public(text)

    assert len(findings) == 2
    for finding in findings:
        shown = f"{finding.detail} {finding.excerpt}"
        digits = "".join(c for c in shown if c.isdigit())
        assert "13812345678" not in digits
        assert ID_X[:17] not in digits
        assert ID_X not in shown


def test_placeholder_left_in_is_refused() -> None:
    text = "您好，您反映的噪音问题经现场核查，【请填写处理结果】。感谢您的监督。"

    findings = public(text)

    assert findings == [
        Finding(
            "placeholder",
            "The reply holds an unfilled placeholder 【请填写处理结果】: fill it in.",
            "【请填写处理结果】",
        )
    ]


def test_every_placeholder_is_a_finding() -> None:
    text = "经核查，【请填写核查情况】。下一步，【请填写整改措施】。"

    assert [f.excerpt for f in public(text)] == ["【请填写核查情况】", "【请填写整改措施】"]


def test_filled_placeholder_passes() -> None:
    text = "您好，您反映的噪音问题经现场核查，已责令施工单位晚10点后停工，违者将依法处罚。"

    assert PLACEHOLDER.search(text) is None
    assert public(text) == []


def test_bracketed_text_that_is_not_a_placeholder_passes() -> None:
    text = "办理依据见【合肥市社会保险补缴办法】第三条，请携带身份证到3号窗口办理。"

    assert public(text) == []


def test_the_required_stock_phrases_are_listed() -> None:
    assert {"已收到", "请咨询相关部门", "您的问题已转有关部门"} <= set(STOCK_PHRASES)


@pytest.mark.parametrize(
    "text",
    [
        "已收到",
        "已收到。",
        "  已收到！！ ",
        "收到",
        "您好，您的问题已转有关部门！",
        "你好!已收到,已转相关部门处理.",
        "尊敬的网友您好：请咨询相关部门。谢谢！",
        "已收到，谢谢您的留言。",
        "感谢您的关注……",
        "“已收到”",
        "您好！",
    ],
)
def test_stock_replies_are_refused(text: str) -> None:
    findings = public(text)

    assert checks(findings) == ["stock_phrase"]
    assert findings[0].excerpt == text.strip()


def test_a_specific_answer_containing_a_stock_phrase_passes() -> None:
    text = "已收到，社保补缴请携带身份证到市民中心3号窗口办理，电话0551-12345678。"

    assert public(text) == []


def test_sensitive_words_match_ignoring_case() -> None:
    text = "关于您反映的问题，请通过WeChat Pay缴纳，内部通知另行下发。"

    findings = check(
        text,
        limit=LIMIT,
        sensitive_words={"内部通知", "wechat pay", "保密"},
        public=True,
    )

    assert [(f.check, f.excerpt) for f in findings] == [
        ("sensitive_word", "wechat pay"),
        ("sensitive_word", "内部通知"),
    ]


def test_blank_sensitive_words_are_ignored() -> None:
    text = "社保补缴请到市民中心3号窗口办理。"

    assert check(text, limit=LIMIT, sensitive_words={"", "  "}, public=True) == []


def test_empty_reply_is_the_only_finding() -> None:
    for text in ("", "   ", "\n\u3000\t"):
        findings = check(text, limit=0, sensitive_words=("",), public=True)
        assert checks(findings) == ["empty"]


def test_several_failures_come_back_together_in_order() -> None:
    text = "已收到【请填写处理结果】，领导批示请联系13812345678，身份证11010519491231002X。"

    findings = check(text, limit=20, sensitive_words=("领导批示",), public=True)

    assert checks(findings) == [
        "placeholder",
        "too_long",
        "sensitive_word",
        "personal_data",
        "personal_data",
    ]


def test_a_stock_reply_comes_back_with_the_other_failures() -> None:
    stock = "您好，已收到。"

    assert checks(check(stock, limit=3, sensitive_words=("收到",), public=True)) == [
        "stock_phrase",
        "too_long",
        "sensitive_word",
    ]
