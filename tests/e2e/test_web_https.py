"""Download and Upload in the file manager, in a real browser (HTTPS access's code path)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_web_files import choose, entry
from tests.support.server import LiveServer

pytestmark = pytest.mark.browser


def test_download_a_file(logged_in: Page, server: LiveServer, tmp_path: Path) -> None:
    page = logged_in
    page.goto(f"{server.url}/files")
    choose(page, "origin", "Demo Collection 1")
    with page.expect_download() as info:
        entry(page, "origin", "hello.txt").locator("[data-testid=download]").click()
    download = info.value
    assert download.suggested_filename == "hello.txt"
    saved = tmp_path / "hello.txt"
    download.save_as(saved)
    original = server.home / "demo" / "collection1" / "hello.txt"
    assert saved.read_bytes() == original.read_bytes()
    # Folders have no download link.
    expect(entry(page, "origin", "nested").locator("[data-testid=download]")).to_have_count(0)


def test_upload_files_into_the_current_folder(
    logged_in: Page, server: LiveServer, tmp_path: Path
) -> None:
    page = logged_in
    page.goto(f"{server.url}/files")
    choose(page, "origin", "Demo Collection 1")
    choose(page, "destination", "Demo Collection 2")
    names = [f"upload-{uuid.uuid4().hex[:6]}-{i}.dat" for i in range(2)]
    for i, name in enumerate(names):
        (tmp_path / name).write_bytes(bytes([i]) * (300_000 + i))
    page.click("[data-testid=destination-upload]")
    page.set_input_files(
        "[data-testid=destination-upload-files]", [str(tmp_path / n) for n in names]
    )
    page.click("[data-testid=destination-upload-submit]")
    expect(page.locator("[data-testid=notice]")).to_contain_text("Uploaded")
    root = server.home / "demo" / "collection2"
    for name in names:
        expect(entry(page, "destination", name)).to_have_count(1)
        assert (root / name).read_bytes() == (tmp_path / name).read_bytes()
    # The other pane kept its collection.
    expect(page.locator("[data-testid=origin-collection] option:checked")).to_have_text(
        "Demo Collection 1"
    )

    # Without choosing files: a clear message, nothing written.
    page.click("[data-testid=destination-upload]")
    page.click("[data-testid=destination-upload-submit]")
    expect(page.locator("[data-testid=error]")).to_contain_text("Choose one or more files")
