"""Provider key material, generated once per session (RSA key generation is the slow part)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from settlement.providers import AlipayAccount, StripeAccount, WeChatPayAccount
from settlement.providers.testing import (
    AlipaySimulator,
    PlatformCertificate,
    StripeSimulator,
    WeChatPaySimulator,
    rsa_keypair_pem,
    stripe_webhook_secret,
    wechatpay_apiv3_key,
    wechatpay_platform_certificate,
)

ALIPAY_APP_ID = "2021000122671234"
WECHAT_MCHID = "1900000109"
WECHAT_APPID = "wxd678efh567hg6787"


@pytest.fixture(scope="session")
def alipay_keys() -> tuple[str, str]:
    return rsa_keypair_pem()


@pytest.fixture(scope="session")
def other_rsa_keys() -> tuple[str, str]:
    return rsa_keypair_pem()


@pytest.fixture(scope="session")
def alipay_account(alipay_keys: tuple[str, str]) -> AlipayAccount:
    return AlipayAccount(account="retail-cn", app_id=ALIPAY_APP_ID, alipay_public_key_pem=alipay_keys[1])


@pytest.fixture(scope="session")
def alipay(alipay_keys: tuple[str, str]) -> AlipaySimulator:
    return AlipaySimulator(ALIPAY_APP_ID, alipay_keys[0])


@pytest.fixture(scope="session")
def platform() -> PlatformCertificate:
    # Valid 2025..2030, covering the fixed clock readings the tests use.
    return wechatpay_platform_certificate(not_before=datetime(2025, 1, 1, tzinfo=timezone.utc))


@pytest.fixture(scope="session")
def apiv3_key() -> str:
    return wechatpay_apiv3_key()


@pytest.fixture(scope="session")
def wechat_account(platform: PlatformCertificate, apiv3_key: str) -> WeChatPayAccount:
    return WeChatPayAccount(account="retail-wx", mchid=WECHAT_MCHID, apiv3_key=apiv3_key,
                            platform_keys={platform.serial: platform.certificate_pem}, appid=WECHAT_APPID)


@pytest.fixture(scope="session")
def wechat(platform: PlatformCertificate, apiv3_key: str) -> WeChatPaySimulator:
    return WeChatPaySimulator(WECHAT_MCHID, apiv3_key, platform, appid=WECHAT_APPID)


@pytest.fixture(scope="session")
def stripe_secret() -> str:
    return stripe_webhook_secret()


@pytest.fixture(scope="session")
def stripe_account(stripe_secret: str) -> StripeAccount:
    return StripeAccount(account="cards-eu", webhook_secrets=(stripe_secret,))


@pytest.fixture(scope="session")
def stripe(stripe_secret: str) -> StripeSimulator:
    return StripeSimulator(stripe_secret)
