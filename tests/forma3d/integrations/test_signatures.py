import base64
import hashlib
import hmac

from forma3d.integrations import signatures


def test_sendcloud_doc_test_vector() -> None:
    body = b'{"key": "value"}'
    expected = "1eed4b3d41f4653ac64fd56f1bf1cbfd349e4482cbc11dff7134bd93e5da4b0a"
    assert signatures.sendcloud_signature("secretkey", body) == expected
    assert signatures.verify_sendcloud("secretkey", body, expected)
    assert signatures.verify_sendcloud("secretkey", body, expected.upper())
    assert not signatures.verify_sendcloud("secretkey", b'{"key":"value"}', expected)
    assert not signatures.verify_sendcloud("other", body, expected)
    assert not signatures.verify_sendcloud("secretkey", body, None)


def test_shopify_signature_is_base64_hmac_of_raw_bytes() -> None:
    body = b'{"id": 820982911946154508}'
    expected = base64.b64encode(hmac.new(b"hush", body, hashlib.sha256).digest()).decode()
    assert signatures.shopify_signature("hush", body) == expected
    assert signatures.verify_shopify("hush", body, expected)
    assert not signatures.verify_shopify("hush", body + b" ", expected)
    assert not signatures.verify_shopify("", body, expected)
    assert not signatures.verify_shopify("hush", body, "")


def test_simplyprint_accepts_either_header_name() -> None:
    assert signatures.verify_simplyprint("s3cret", {"X-SP-Secret": "s3cret"})
    assert signatures.verify_simplyprint("s3cret", {"x-sp-token": "s3cret"})
    assert not signatures.verify_simplyprint("s3cret", {"X-SP-Secret": "wrong"})
    assert not signatures.verify_simplyprint("s3cret", {})
    assert not signatures.verify_simplyprint("", {"X-SP-Secret": ""})
    sent = signatures.simplyprint_headers("abc")
    assert sent == {"X-SP-Secret": "abc", "X-SP-Token": "abc"}
