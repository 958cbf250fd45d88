"""Alipay merchant daily bill, the 业务明细 (trade detail) CSV.

Layout: GBK text; ``#`` comment lines before the header (#支付宝业务明细查询, #账号, #起始日期...)
and after the rows (#-----业务明细列表结束-----, #交易合计, #退款合计, #导出时间); then the header
支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,
对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,
券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,
分润（元）,备注. Fields are often padded with tabs/spaces. Refund rows carry negative amounts.

Read: 支付宝交易号, 商户订单号, 业务类型, 完成时间 (创建时间 when empty), 订单金额（元）,
退款批次号/请求号, and 服务费（元） when fee lines are asked for. The bill lists completed business
only, so every line is ``succeeded``.
"""

from __future__ import annotations

from settlement.domains.reconciliation.engine.model import (
    KIND_FEE,
    KIND_PAYMENT,
    KIND_REFUND,
    STATUS_SUCCEEDED,
    ParseResult,
)
from settlement.domains.reconciliation.engine.parsers._bill import RowFault, money, parse_bill, timestamp

FORMAT_ALIPAY = "alipay-trade-bill"
COL_TRADE_NO = "支付宝交易号"
COL_OUT_TRADE_NO = "商户订单号"
COL_BIZ_TYPE = "业务类型"
COL_CREATED = "创建时间"
COL_FINISHED = "完成时间"
COL_ORDER_AMOUNT = "订单金额（元）"
COL_REFUND_REQUEST = "退款批次号/请求号"
COL_SERVICE_FEE = "服务费（元）"
REQUIRED = (COL_TRADE_NO, COL_OUT_TRADE_NO, COL_BIZ_TYPE, COL_FINISHED, COL_ORDER_AMOUNT)
_KINDS = {"交易": KIND_PAYMENT, "退款": KIND_REFUND}
CURRENCY = "CNY"


def parse_alipay_bill(data: bytes, *, source: str = "alipay", include_fees: bool = False,
                      encoding: str | None = None) -> ParseResult:
    """Statement lines of an Alipay 业务明细 bill. Refund lines get ``provider_txn_id`` =
    ``支付宝交易号#退款批次号`` (Alipay issues no refund id of its own in this bill). With
    ``include_fees`` a non-zero 服务费 becomes an extra ``fee`` line with id ``支付宝交易号#fee``."""

    def row(values: dict[str, str], line_no: int, text: str) -> tuple | None:
        kind = _KINDS.get(values[COL_BIZ_TYPE])
        if kind is None:
            raise RowFault(f"{COL_BIZ_TYPE}: unknown business type {values[COL_BIZ_TYPE]!r}")
        trade_no = values[COL_TRADE_NO]
        if not trade_no:
            raise RowFault(f"{COL_TRADE_NO}: empty")
        amount = money(values[COL_ORDER_AMOUNT], CURRENCY, COL_ORDER_AMOUNT)
        when = values[COL_FINISHED] or values.get(COL_CREATED, "")
        booked = timestamp(when, COL_FINISHED)
        txn = trade_no
        if kind == KIND_REFUND:
            request = values.get(COL_REFUND_REQUEST, "")
            txn = f"{trade_no}#{request}" if request else trade_no
        reference = values[COL_OUT_TRADE_NO] or None
        if include_fees and values.get(COL_SERVICE_FEE):
            fee = money(values[COL_SERVICE_FEE], CURRENCY, COL_SERVICE_FEE)
            if fee.value:
                extra.append((source, line_no, f"{txn}#fee", reference, KIND_FEE, fee.value, CURRENCY,
                              STATUS_SUCCEEDED, booked, text))
        return (source, line_no, txn, reference, kind, amount.value, CURRENCY, STATUS_SUCCEEDED, booked, text)

    extra: list[tuple] = []
    result = parse_bill(data, source=source, fmt=FORMAT_ALIPAY, header_first=COL_TRADE_NO, row=row,
                        required=REQUIRED, encoding=encoding)
    for line in extra:
        result.lines.append(line)
    return result
