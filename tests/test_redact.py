"""loadgen.redact: the one redactor of URLs and text."""

from __future__ import annotations

import pytest

from loadgen.redact import mask_userinfo, redact, redact_text, scrub, split_credentials, strip_credentials

SECRET = "s3cr=t/p@ss"


def test_redact_masks_the_password_and_keeps_the_user() -> None:
    assert redact("http://u:pw@h:1/x?y=1") == "http://u:***@h:1/x?y=1"
    assert redact("http://h/x") == "http://h/x"
    assert redact("redis://:pw@h") == "redis://:***@h"
    assert redact("postgresql://u@h/db?password=pw&sslmode=require") == "postgresql://u@h/db?password=***&sslmode=require"


def test_redact_never_raises_on_an_unparsable_url() -> None:
    assert redact("http://u:pw@[::1/x") == "http://***@[::1/x"
    # the password's own @ does not end the user-info (found by review: "***@2@[::1" leaked "2")
    assert redact("http://admin:hunter@2@[::1/x y") == "http://***@[::1/x y"


def test_mask_userinfo_hides_the_user_too() -> None:
    # A target URL's user name may be a token sent as Basic auth: messages hide all of it.
    assert mask_userinfo("http://ghp_T0KEN@127.0.0.1:1/a b") == "http://***@127.0.0.1:1/a b"
    assert mask_userinfo("http://u:p@w@h/") == "http://***@h/"
    assert mask_userinfo("http://h/x@y") == "http://h/x@y"


def test_redact_text_masks_every_url_in_free_text() -> None:
    assert redact_text("see rabbitmq:http://g:pw@h/a and redis://:pw@x/0") == (
        "see rabbitmq:http://g:***@h/a and redis://:***@x/0"
    )


@pytest.mark.parametrize(("url", "bare"), [
    ("http://u:pw@h:8080/x?q=1", "http://h:8080/x?q=1"),
    ("http://h/x@y", "http://h/x@y"),  # an @ in the path is not userinfo
    ("http://u:p@w@h/", "http://h/"),  # the last @ of the authority ends userinfo
    ("http://u:pw@[::1/x", "http://[::1/x"),  # unparsable: still no credentials, no exception
    ("/relative/path", "/relative/path"),
])
def test_strip_credentials(url: str, bare: str) -> None:
    assert strip_credentials(url) == bare


def test_split_credentials_decodes_them() -> None:
    assert split_credentials("http://us%40er:p%3Aw@h:1/x") == ("http://h:1/x", "us@er", "p:w")
    assert split_credentials("http://h/x") == ("http://h/x", None, None)


def test_scrub_removes_raw_and_percent_encoded_secrets() -> None:
    text = f"failed: {SECRET} and s3cr%3Dt%2Fp%40ss"
    assert SECRET not in scrub(text, [SECRET]) and "s3cr%3Dt%2Fp%40ss" not in scrub(text, [SECRET])
