"""The API docs page renders Swagger UI from our own static files under the console's CSP."""

from playwright.sync_api import expect

from users.services import tokens


def test_docs_page_renders_without_csp_violations(page, url):
    page.goto(url("/api/docs"))
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("User console API")
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    expect(page.get_by_text("/api/users/{user_id}").first).to_be_visible()


def test_api_tokens_page_issues_and_revokes(page, url, sign_in):
    admin = sign_in("admin")
    page.goto(url("users:api-tokens"))
    page.get_by_label("Name").fill("CRM integration")
    page.get_by_role("button", name="Issue token").click()
    secret = page.locator("#new-token-secret").input_value()
    assert tokens.authenticate_token(secret) == admin
    page.get_by_role("link", name="Revoke CRM integration").click()
    expect(page.get_by_role("heading", name="Revoke token “CRM integration”?")).to_be_visible()
    page.get_by_role("button", name="Yes, revoke").click()
    expect(page.get_by_text("is revoked")).to_be_visible()
    assert tokens.authenticate_token(secret) is None
