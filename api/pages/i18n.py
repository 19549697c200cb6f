"""The pages' two languages (English and Simplified Chinese) and how one is chosen.

A ``?lang=`` query parameter wins (and is remembered in a cookie), then the cookie, then the
browser's ``Accept-Language`` (q-values honoured), then English.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

LANGUAGES: Final = ("en", "zh-CN")
DEFAULT: Final = "en"
COOKIE: Final = "lp_lang"
#: The Babel locale of each language (number, currency and date formats).
LOCALES: Final = {"en": "en", "zh-CN": "zh_Hans_CN"}

# One entry per message: (English, Simplified Chinese). Templates call t("key").
MESSAGES: Final[Mapping[str, tuple[str, str]]] = {
    "site": ("LiveProof", "LiveProof 链上凭证"),
    "tagline": (
        "Evidence from the chain, not the platform's word",
        "证据来自区块链，而非平台一面之词",
    ),
    "switch_to": ("中文", "English"),
    "skip": ("Skip to content", "跳到正文"),
    # product page
    "product": ("Product", "商品"),
    "gtin": ("GTIN", "商品条码 (GTIN)"),
    "lot": ("Lot", "批号"),
    "serial": ("Serial", "序列号"),
    "lot_note": (
        "Lot and serial are read from the scanned link; they are not recorded on chain.",
        "批号与序列号取自所扫链接，未登记上链。",
    ),
    "brand": ("Brand", "品牌"),
    "registered": ("Registered on chain", "已上链登记"),
    "claims": ("Provenance claims", "溯源声明"),
    "no_claims": ("No claims yet.", "暂无声明。"),
    "valid_until": ("Valid until", "有效期至"),
    "state_valid": ("Valid", "有效"),
    "state_expired": ("Expired", "已过期"),
    "state_revoked": ("Revoked", "已撤销"),
    "state_active": ("Active", "生效中"),
    "state_pending": ("Not yet valid", "尚未生效"),
    "attestations": ("Certifier attestations", "认证机构证明"),
    "no_attestations": ("No attestation.", "暂无认证。"),
    "document": ("Document", "文件"),
    "endorsing": ("Anchors endorsing it now", "当前推荐该商品的主播"),
    "no_endorsements": ("No anchor endorses this product now.", "目前没有主播推荐该商品。"),
    "ad_long": ("Paid promotion (sponsored)", "付费推广（广告）"),
    "not_sponsored": ("Not sponsored", "非广告"),
    "commission": ("Commission", "佣金"),
    "promised_price": ("Promised price", "承诺价格"),
    "room": ("Live room", "直播间"),
    "valid_window": ("Valid", "有效期"),
    "sales": ("Verified sales", "已验证销量"),
    "sales_note": (
        "Units in receipts committed on chain, refunds subtracted. Pending receipts are "
        "counted apart until they are committed.",
        "仅计已上链的收据，并扣除退款；待上链的收据单独列出。",
    ),
    "units_verified": ("units verified", "件（已验证）"),
    "pending_label": ("pending", "待上链"),
    "pending_sold": ("sold", "售出"),
    "pending_refunded": ("refunded", "退款"),
    "refunded": ("refunded", "已退款"),
    "via_anchor": ("Sold in this anchor's sessions", "该主播直播间售出"),
    "tx": ("Transaction", "交易"),
    "view_tx": ("transaction", "查看交易"),
    "scan": ("Scan to open this page", "扫码打开本页"),
    # receipt page
    "receipt": ("Receipt", "收据"),
    "sale": ("Sale", "销售"),
    "refund": ("Refund", "退款"),
    "refund_of": ("Refund of", "退款对应"),
    "status": ("Status", "状态"),
    "status_pending": ("Pending: waiting for the next batch", "待上链：等待下一批次"),
    "status_committed": ("Committed on chain", "已上链"),
    "quantity": ("Quantity", "数量"),
    "unit_price": ("Unit price", "单价"),
    "ordered_at": ("Ordered at", "下单时间"),
    "session": ("Live session", "直播场次"),
    "batch": ("Batch (Merkle root)", "批次（默克尔根）"),
    "batch_size": ("Receipts in batch", "批次收据数"),
    "block": ("Block", "区块"),
    "verify": ("Verify on the chain", "在链上验证"),
    "verify_help": (
        "Your browser recomputes this receipt's leaf, folds its Merkle proof and asks the "
        "chain's own JSON-RPC node for the root. The answer does not depend on this site's word: "
        "you can point it at any node of the chain.",
        "浏览器将重新计算本收据的叶子哈希、折叠默克尔证明，并直接向区块链 JSON-RPC 节点查询根。"
        "结论不依赖本网站；您可以换成该链的任意节点。",
    ),
    "rpc_url": ("Chain RPC URL", "区块链 RPC 地址"),
    "verifying": ("Checking with the chain…", "正在向区块链核验…"),
    "verified_long": (
        "Verified: the chain holds this receipt, with these values.",
        "已验证：链上记录了本收据，内容一致。",
    ),
    "not_verified": ("Not verified", "未通过验证"),
    "verify_error": ("Could not check", "无法核验"),
    "download_bundle": ("Download proof bundle (JSON)", "下载证明文件 (JSON)"),
    "bundle_cli": (
        "Check it later with no website at all: liveproof verify-receipt bundle.json --rpc URL",
        "之后可脱离网站自行核验：liveproof verify-receipt bundle.json --rpc URL",
    ),
    "pending_wait": (
        "This receipt is accepted and will be committed within seconds. This page refreshes "
        "itself.",
        "收据已受理，将在数秒内上链。本页会自动刷新。",
    ),
    "verify_file": ("Verify a proof bundle", "核验证明文件"),
    "verify_file_help": (
        "Choose a proof bundle (liveproof-receipt-proof/1) you downloaded earlier; it is checked "
        "in your browser against the chain's RPC.",
        "选择之前下载的证明文件（liveproof-receipt-proof/1），浏览器将直接向区块链 RPC 核验。",
    ),
    "bundle_file": ("Proof bundle file", "证明文件"),
    "check_step_chain": ("Chain id", "链 ID"),
    "check_step_leaf": ("Leaf recomputed and proof folded to the root", "重算叶子并折叠证明得到根"),
    "check_step_ledger": ("Ledger's verifyReceipt", "账本合约 verifyReceipt"),
    "check_step_batch": ("Batch recorded at the stated block", "批次记录于所述区块"),
    "check_step_tx": ("Commit transaction", "上链交易"),
    "check_step_receipt": ("The bundle is this receipt's", "证明文件属于本收据"),
    "check_step_proven": ("Proven on chain", "链上已证明"),
    "pin_ledger": ("Ledger contract (advanced)", "账本合约（高级）"),
    "ledger_address": ("Ledger contract address", "账本合约地址"),
    "pin_ledger_help": (
        "The proof is checked against this SaleLedger contract. Compare it with the address "
        "the platform publishes, or paste that address here; empty: the bundle's own.",
        "证明将对照此 SaleLedger 合约核验。请与平台公开发布的地址比对，或在此粘贴该地址；"
        "留空则使用证明文件中的地址。",
    ),
    "optional": ("optional", "可选"),
    # anchor page
    "anchor": ("Anchor", "主播"),
    "identity": ("Verified identity", "已验证身份"),
    "identity_note": (
        "Handle and address are registered on the AnchorRegistry contract.",
        "账号与地址已登记在 AnchorRegistry 合约上。",
    ),
    "address": ("Address", "地址"),
    "removed": ("Removed from the registry", "已从登记中移除"),
    "endorsements": ("Endorsements", "推荐记录"),
    "sales_by_product": ("Verified sales per product", "各商品已验证销量"),
    "no_sales": ("No sales yet.", "暂无销售。"),
    "refund_rate": ("Refund rate", "退款率"),
    "price_promise": ("Price promise kept", "价格承诺履约"),
    "price_promise_note": (
        "Sales under an endorsement at or below its promised unit price.",
        "在推荐下以不高于承诺单价成交的订单。",
    ),
    "sales_at_promise": ("sales at or below the promised price", "单不高于承诺价"),
    "no_promised_sales": ("No sales under an endorsement yet.", "暂无推荐下的销售。"),
    "sessions": ("Live sessions: displayed vs verified sales", "直播场次：展示销量与已验证销量"),
    "displayed": ("Displayed", "展示销量"),
    "verified_net": ("Verified net", "已验证净销量"),
    "opened": ("Opened", "开播"),
    "closed": ("Closed", "下播"),
    "live_now": ("live now", "直播中"),
    "overstated": ("Overstated", "虚报"),
    "matches": ("Matches", "一致"),
    "not_closed": ("not closed", "未结束"),
    "endorse_link": ("Sign a new endorsement", "签署新的推荐"),
    # signing page
    "sign_title": ("Sign an endorsement", "签署商品推荐"),
    "sign_intro": (
        "Your wallet signs the endorsement (EIP-712); LiveProof relays it to the chain. Nothing "
        "is recorded without your signature, and you can revoke it later.",
        "由您的钱包签署推荐（EIP-712），LiveProof 代为上链。"
        "未经您签名不会记录任何内容，之后也可撤销。",
    ),
    "connect": ("Connect wallet", "连接钱包"),
    "no_wallet": (
        "No browser wallet found. Install one, or use: liveproof sign endorsement",
        "未检测到浏览器钱包。请安装钱包，或使用命令 liveproof sign endorsement",
    ),
    "sponsored_label": ("Paid promotion: show as 广告 / Ad", "付费推广：显示“广告 / Ad”标识"),
    "commission_label": ("Commission (%)", "佣金 (%)"),
    "price_label": ("Promised unit price", "承诺单价"),
    "currency": ("Currency", "币种"),
    "valid_days": ("Valid for (days)", "有效天数"),
    "sign_submit": ("Sign and record", "签名并上链"),
    "signing": ("Waiting for your wallet…", "等待钱包签名…"),
    "submitting": ("Recording on chain…", "正在上链…"),
    "recorded": ("Endorsement recorded", "推荐已上链"),
    "refused": ("Refused", "被拒绝"),
    "endorsement_id": ("Endorsement id", "推荐 ID"),
    "see_profile": ("See your profile", "查看主页"),
    "signing_as": ("Signing as", "签名账户"),
    "disclosure": ("Disclosure", "披露"),
    # errors
    "not_found": ("Not found", "未找到"),
    "not_found_product": ("No product is registered with this GTIN.", "该条码没有登记的商品。"),
    "not_found_receipt": ("No receipt has this code.", "没有与此编码对应的收据。"),
    "not_found_anchor": ("No anchor has this handle.", "没有此账号的主播。"),
    "not_found_page": ("There is no page here.", "此处没有页面。"),
    "bad_link": ("This is not a valid GS1 Digital Link.", "这不是有效的 GS1 数字链接。"),
    "home": ("Home", "首页"),
    "products": ("Products", "商品"),
    "anchors": ("Anchors", "主播"),
    "tx_title": ("Transaction", "交易"),
    "tx_status_ok": ("Succeeded", "成功"),
    "tx_status_failed": ("Failed", "失败"),
    "contract": ("Contract", "合约"),
    "events": ("Events", "事件"),
    "from": ("From", "发送方"),
}


def message(lang: str, key: str) -> str:
    """The ``key`` message in ``lang`` (English when the language is unknown)."""
    en, zh = MESSAGES[key]
    return zh if lang == "zh-CN" else en


def normalise(tag: str) -> str | None:
    """Map a language tag to one of :data:`LANGUAGES`, or None."""
    tag = tag.strip().lower().replace("_", "-")
    if tag == "zh" or tag.startswith("zh-"):
        return "zh-CN"
    if tag == "en" or tag.startswith("en-"):
        return "en"
    return None


def from_accept_language(header: str | None) -> str | None:
    """The best of :data:`LANGUAGES` for an ``Accept-Language`` header, or None."""
    if not header:
        return None
    best: tuple[float, int, str] | None = None
    for position, item in enumerate(header.split(",")[:32]):
        tag, _, params = item.partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        language = normalise(tag)
        if language is None or quality <= 0:
            continue
        # Highest q wins; among equals, the first listed.
        rank = (quality, -position, language)
        if best is None or rank[:2] > best[:2]:
            best = rank
    return None if best is None else best[2]


def choose(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The page language: ``?lang=``, then the cookie, then Accept-Language, then English."""
    for candidate in (query, cookie):
        if candidate:
            language = normalise(candidate)
            if language is not None:
                return language
    return from_accept_language(accept_language) or DEFAULT
