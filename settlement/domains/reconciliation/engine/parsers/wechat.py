"""WeChat Pay trade bill (交易账单, bill_type ALL/SUCCESS/REFUND), CSV.

Layout: header 交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,
交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,
充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注;
every value prefixed with a backtick; then a summary header (总交易单数,...) and one summary row.

Read: 交易时间, 微信订单号, 商户订单号, 交易状态 (SUCCESS / REFUND / REVOKED), 货币种类 (CNY when
absent), 应结订单金额 (payments), 微信退款单号, 退款金额, 退款状态 (refunds), and 手续费 when fee
lines are asked for. A REFUND row is a refund line whose ``provider_txn_id`` is 微信退款单号.
"""

from __future__ import annotations

from settlement.domains.reconciliation.engine.model import (
    KIND_FEE,
    KIND_PAYMENT,
    KIND_REFUND,
    STATUS_FAILED,
    STATUS_PENDING,
    STATUS_REVERSED,
    STATUS_SUCCEEDED,
    ParseResult,
)
from settlement.domains.reconciliation.engine.parsers._bill import RowFault, money, parse_bill, timestamp

FORMAT_WECHAT = "wechatpay-trade-bill"
COL_TIME = "交易时间"
COL_TRANSACTION_ID = "微信订单号"
COL_OUT_TRADE_NO = "商户订单号"
COL_TRADE_STATE = "交易状态"
COL_CURRENCY = "货币种类"
COL_SETTLEMENT_TOTAL = "应结订单金额"
COL_REFUND_ID = "微信退款单号"
COL_REFUND_AMOUNT = "退款金额"
COL_REFUND_STATUS = "退款状态"
COL_FEE = "手续费"
REQUIRED = (COL_TIME, COL_TRANSACTION_ID, COL_OUT_TRADE_NO, COL_TRADE_STATE, COL_SETTLEMENT_TOTAL)
SUMMARY_FIRST = "总交易单数"
_REFUND_STATUS = {"SUCCESS": STATUS_SUCCEEDED, "PROCESSING": STATUS_PENDING, "FAIL": STATUS_FAILED,
                  "FAILED": STATUS_FAILED, "CHANGE": STATUS_FAILED, "ABNORMAL": STATUS_FAILED,
                  "CLOSED": STATUS_FAILED}
_CURRENCY_NAMES = {"": "CNY", "CNY": "CNY", "人民币": "CNY"}


def parse_wechat_bill(data: bytes, *, source: str = "wechatpay", include_fees: bool = False,
                      encoding: str | None = None) -> ParseResult:
    """Statement lines of a WeChat Pay trade bill; the summary section is skipped."""

    def row(values: dict[str, str], line_no: int, text: str) -> tuple | None:
        state = values[COL_TRADE_STATE]
        currency = _CURRENCY_NAMES.get(values.get(COL_CURRENCY, ""), values.get(COL_CURRENCY, ""))
        booked = timestamp(values[COL_TIME], COL_TIME)
        reference = values[COL_OUT_TRADE_NO] or None
        txn = values[COL_TRANSACTION_ID]
        if not txn:
            raise RowFault(f"{COL_TRANSACTION_ID}: empty")
        if state == "SUCCESS":
            kind, status = KIND_PAYMENT, STATUS_SUCCEEDED
            amount = money(values[COL_SETTLEMENT_TOTAL], currency, COL_SETTLEMENT_TOTAL)
        elif state == "REVOKED":
            kind, status = KIND_PAYMENT, STATUS_REVERSED
            amount = money(values[COL_SETTLEMENT_TOTAL], currency, COL_SETTLEMENT_TOTAL)
        elif state == "REFUND":
            kind = KIND_REFUND
            status = _REFUND_STATUS.get(values.get(COL_REFUND_STATUS, "").upper())
            if status is None:
                raise RowFault(f"{COL_REFUND_STATUS}: unknown {values.get(COL_REFUND_STATUS)!r}")
            amount = money(values.get(COL_REFUND_AMOUNT, ""), currency, COL_REFUND_AMOUNT)
            txn = values.get(COL_REFUND_ID) or txn
        else:
            raise RowFault(f"{COL_TRADE_STATE}: unknown {state!r}")
        if include_fees and values.get(COL_FEE):
            fee = money(values[COL_FEE], currency, COL_FEE)
            if fee.value:
                extra.append((source, line_no, f"{txn}#fee", reference, KIND_FEE, fee.value, currency,
                              status, booked, text))
        return (source, line_no, txn, reference, kind, amount.value, currency, status, booked, text)

    extra: list[tuple] = []
    result = parse_bill(data, source=source, fmt=FORMAT_WECHAT, header_first=COL_TIME, row=row,
                        required=REQUIRED, encoding=encoding,
                        stop=lambda text: text.lstrip("`").startswith(SUMMARY_FIRST))
    for line in extra:
        result.lines.append(line)
    return result
