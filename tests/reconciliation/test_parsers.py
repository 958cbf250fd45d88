"""Parsers: realistic provider files in, normalized lines and per-row errors out, never a crash."""

from __future__ import annotations

from datetime import datetime

import pytest

from settlement.core.errors import StatementFormatError, UnsafeStatementError
from settlement.domains.reconciliation.engine import (
    parse_alipay_bill,
    parse_camt053,
    parse_ledger_csv,
    parse_normalized_csv,
    sniff_format,
)

ALIPAY_HEADER = ("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,"
                 "对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,"
                 "券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注")


def alipay_row(trade_no: str, order: str, biz: str, amount: str, request: str = "", fee: str = "0.00") -> str:
    return (f"{trade_no}\t,{order}\t,{biz},咖啡,2024-01-15 10:00:00,2024-01-15 10:00:05,,,,,buyer@example.com,"
            f"{amount},{amount},0.00,0.00,0.00,0.00,0.00,,0.00,0.00,{request},{fee},0.00,")


def alipay_bill(rows: list[str]) -> bytes:
    text = "\n".join([
        "#支付宝业务明细查询",
        "#账号：[20881234567890120156]",
        "#起始日期：[2024年01月15日 00:00:00]   终止日期：[2024年01月16日 00:00:00]",
        "#-----------------------------------------业务明细列表----------------------------------------",
        ALIPAY_HEADER, *rows,
        "#-----------------------------------------业务明细列表结束------------------------------------",
        "#交易合计：2笔，商家实收共88.80元",
        "#导出时间：[2024年01月16日 09:12:33]",
    ])
    return text.encode("gbk")


def test_alipay_gbk_bill_with_comment_lines_is_read_exactly():
    """A GBK bill with # header/footer lines: payment and refund lines, exact fen amounts."""
    data = alipay_bill([alipay_row("2024011522001400001", "ORD-1", "交易", "88.80", fee="0.53"),
                        alipay_row("2024011522001400001", "ORD-1", "退款", "-8.80", request="RF-1")])
    result = parse_alipay_bill(data, include_fees=True)
    assert result.encoding == "gb18030" and result.errors == []
    lines = list(result.lines)
    payment, refund, fee = lines
    assert (payment.provider_txn_id, payment.reference, payment.kind, payment.amount_minor) == \
        ("2024011522001400001", "ORD-1", "payment", 8880)
    assert str(payment.amount) == "88.80 CNY"
    assert (refund.provider_txn_id, refund.kind, refund.amount_minor) == ("2024011522001400001#RF-1", "refund", 880)
    assert (fee.kind, fee.amount_minor) == ("fee", 53)
    assert payment.booked_at == datetime(2024, 1, 15, 10, 0, 5)
    assert payment.line_no == 6 and "ORD-1" in payment.raw


def test_alipay_broken_rows_become_row_errors():
    """Bad amount, wrong field count, unknown business type, undecodable bytes: one error each."""
    good = alipay_row("T1", "ORD-1", "交易", "1.00")
    data = alipay_bill([good, alipay_row("T2", "ORD-2", "交易", "1.001"), "T3,ORD-3,交易",
                        alipay_row("T4", "ORD-4", "转账", "1.00")])
    data = data.replace(b"T1\t,ORD-1", b"T1\t,ORD-1") + b"\n\xff\xfe\xfd,\x80\n"
    result = parse_alipay_bill(data)
    assert [line.provider_txn_id for line in result.lines] == ["T1"]
    assert len(result.errors) == 4
    reasons = " | ".join(e.reason for e in result.errors)
    assert "订单金额" in reasons and "fields" in reasons and "业务类型" in reasons and "not valid" in reasons


def wechat_bill() -> bytes:
    header = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
              "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,"
              "商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注")

    def row(*values: str) -> str:
        return ",".join("`" + v for v in values)

    rows = [
        row("2024-01-15 10:00:00", "wx2421b1c4370ec43b", "10000100", "0", "", "4200000001202401150000000001",
            "ORD-1", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "JSAPI", "SUCCESS", "CMC", "CNY", "88.80", "0.00", "0", "0",
            "0.00", "0.00", "", "", "咖啡", "", "0.53", "0.60%", "88.80", "0.00", ""),
        row("2024-01-15 11:00:00", "wx2421b1c4370ec43b", "10000100", "0", "", "4200000001202401150000000001",
            "ORD-1", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "JSAPI", "REFUND", "CMC", "CNY", "0.00", "0.00",
            "50000000012024011500000001", "RF-1", "8.80", "0.00", "ORIGINAL", "SUCCESS", "咖啡", "", "-0.05",
            "0.60%", "0.00", "8.80", ""),
        row("2024-01-15 12:00:00", "wx2421b1c4370ec43b", "10000100", "0", "", "4200000001202401150000000002",
            "ORD-2", "oUpF8uMu", "JSAPI", "SUCCESS", "CMC", "CNY", "12.3x", "0.00", "0", "0", "0.00", "0.00",
            "", "", "茶", "", "0.07", "0.60%", "12.30", "0.00", ""),
    ]
    summary = ["总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额",
               row("3", "101.10", "8.80", "0.00", "0.55", "101.10", "8.80")]
    return ("\r\n".join([header, *rows, *summary]) + "\r\n").encode("utf-8")


def test_wechat_bill_with_backticks_and_summary():
    """Backtick-prefixed values are read, the summary section is not a line, a bad amount is an error."""
    from settlement.domains.reconciliation.engine import parse_wechat_bill

    result = parse_wechat_bill(wechat_bill())
    assert result.encoding == "utf-8"
    payment, refund = list(result.lines)
    assert (payment.provider_txn_id, payment.reference, payment.kind, payment.amount_minor, payment.status) == \
        ("4200000001202401150000000001", "ORD-1", "payment", 8880, "succeeded")
    assert (refund.provider_txn_id, refund.kind, refund.amount_minor) == ("50000000012024011500000001", "refund", 880)
    assert len(result.errors) == 1 and result.errors[0].line_no == 4 and "应结订单金额" in result.errors[0].reason


CAMT = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">
 <BkToCstmrStmt>
  <GrpHdr><MsgId>STMT-1</MsgId><CreDtTm>2024-01-16T06:00:00</CreDtTm></GrpHdr>
  <Stmt>
   <Id>S1</Id>
   <Ntry>
    <Amt Ccy="EUR">1250.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>
    <BookgDt><Dt>2024-01-15</Dt></BookgDt><AcctSvcrRef>BANKREF-1</AcctSvcrRef>
    <NtryDtls><TxDtls><Refs><EndToEndId>INV-2024-001</EndToEndId></Refs>
     <RmtInf><Ustrd>Invoice 2024-001</Ustrd></RmtInf></TxDtls></NtryDtls>
   </Ntry>
   <Ntry>
    <Amt Ccy="EUR">2.50</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
    <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>CCRD</Cd><SubFmlyCd>CHRG</SubFmlyCd></Fmly></Domn></BkTxCd>
    <BookgDt><Dt>2024-01-15</Dt></BookgDt><AcctSvcrRef>BANKREF-2</AcctSvcrRef>
   </Ntry>
   <Ntry>
    <Amt Ccy="XXX">1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>
    <BookgDt><Dt>2024-01-15</Dt></BookgDt>
   </Ntry>
  </Stmt>
 </BkToCstmrStmt>
</Document>
"""


def test_camt053_entries_become_lines_and_bad_entry_an_error():
    """Credit -> payment with EndToEndId as reference; charge debit -> fee; bad currency -> row error."""
    result = parse_camt053(CAMT.encode())
    payment, fee = list(result.lines)
    assert (payment.provider_txn_id, payment.reference, payment.kind, payment.amount_minor, payment.currency) == \
        ("BANKREF-1", "INV-2024-001", "payment", 125000, "EUR")
    assert payment.line_no == 7 and payment.status == "succeeded"
    assert (fee.kind, fee.amount_minor) == ("fee", 250)
    assert len(result.errors) == 1 and result.errors[0].line_no == 18


@pytest.mark.parametrize("doctype", [
    '<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>',
    "<!doctype Document>",
])
def test_camt053_with_doctype_or_entity_is_refused(doctype):
    """XXE / billion-laughs carriers are refused before the parser sees them."""
    data = CAMT.replace('<?xml version="1.0" encoding="UTF-8"?>', '<?xml version="1.0"?>' + doctype).encode()
    with pytest.raises(UnsafeStatementError):
        parse_camt053(data)


def test_camt053_not_xml_is_a_format_error():
    with pytest.raises(StatementFormatError):
        parse_camt053(b"<Document><BkToCstmrStmt>")


NORMALIZED = ("provider_txn_id,reference,kind,amount_minor,currency,status,booked_at\n"
              "T1,ORD-1,payment,8880,CNY,succeeded,2024-01-15T10:00:00+08:00\n"
              "T2,ORD-2,payment,-5,CNY,succeeded,2024-01-15\n"
              "T3,ORD-3,refund,100,XXX,succeeded,2024-01-15\n"
              "T4,\"ORD,4\",fee,7,CNY,pending,2024-01-15\n"
              "T5,ORD-5,payment,1,CNY,succeeded,yesterday\n"
              "T6,ORD-6,payment,1,CNY\n")


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_normalized_csv_rows_and_errors(bom):
    """Good rows parse (quoted fields too), every bad row is one error with its line number."""
    result = parse_normalized_csv(bom + NORMALIZED.encode())
    assert [(line.provider_txn_id, line.reference, line.line_no) for line in result.lines] == \
        [("T1", "ORD-1", 2), ("T4", "ORD,4", 5)]
    assert [e.line_no for e in result.errors] == [3, 4, 6, 7]


def test_normalized_csv_clean_file_takes_the_fast_path_and_matches_slow_path():
    """The column-wise fast path and the row-wise path produce the same lines."""
    rows = [f"T{i},ORD-{i},payment,{i * 7},CNY,succeeded,2024-01-15T10:{i % 60:02d}:00" for i in range(500)]
    clean = ("provider_txn_id,reference,kind,amount_minor,currency,status,booked_at\n" + "\n".join(rows)).encode()
    fast = parse_normalized_csv(clean)
    slow = parse_normalized_csv(clean.replace(b"T0,ORD-0", b'"T0",ORD-0'))  # a quote forces the slow path
    assert [line[:-1] for line in fast.lines] == [line[:-1] for line in slow.lines]
    assert len(fast.lines) == 500


def test_normalized_csv_gbk_and_undecodable_row():
    """GBK text is detected; a row with bytes invalid in the file's encoding is a row error."""
    text = ("provider_txn_id,reference,kind,amount_minor,currency,status,booked_at\n"
            + "T1,订单-1,payment,1,CNY,succeeded,2024-01-15\n" * 20)
    data = text.encode("gbk")
    result = parse_normalized_csv(data)
    assert result.encoding == "gb18030" and {line.reference for line in result.lines} == {"订单-1"}
    utf8 = text.encode("utf-8") + b"T9,\xff\xfe,payment,1,CNY,succeeded,2024-01-15\n"
    result = parse_normalized_csv(utf8)
    assert result.encoding == "utf-8" and [e.line_no for e in result.errors] == [22]


def test_ledger_csv_with_chain_facts():
    data = ("entry_id,provider_txn_id,reference,kind,amount_minor,currency,status,booked_at,chain_state,tx_hash\n"
            "J1,T1,ORD-1,payment,8880,CNY,succeeded,2024-01-15,confirmed,0xabc\n"
            "J2,,ORD-2,refund,10,CNY,pending,2024-01-15,,\n"
            "J3,T3,ORD-3,payment,10,CNY,succeeded,2024-01-15,mined,\n").encode()
    result = parse_ledger_csv(data)
    first, second = list(result.lines)
    assert (first.chain_state, first.tx_hash, second.provider_txn_id, second.chain_state) == \
        ("confirmed", "0xabc", None, None)
    assert [e.line_no for e in result.errors] == [4]


def test_missing_header_column_is_a_format_error():
    with pytest.raises(StatementFormatError):
        parse_normalized_csv(b"provider_txn_id,reference\nT1,R1\n")


def test_sniffing():
    assert sniff_format(alipay_bill([])) == "alipay-trade-bill"
    assert sniff_format(wechat_bill()) == "wechatpay-trade-bill"
    assert sniff_format(CAMT.encode()) == "camt.053"
    assert sniff_format(NORMALIZED.encode()) == "normalized-csv"
