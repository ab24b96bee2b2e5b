def test_tenant_admin_lists_own_extensions(api, world):
    r = api(world.a_admin, world.tenant_a).get("/api/v1/extensions/")
    assert r.status_code == 200, r.content
    assert [e["number"] for e in r.json()["items"]] == ["101", "102"]
